//! The real kernel: rtnetlink for links, addresses and routes; generic netlink "wireguard" or a
//! userspace implementation's UAPI socket for keys and peers; setns to reach named namespaces.

mod child;
pub(crate) mod daemon;
pub(crate) mod dbus;
mod dns;
mod genl;
mod kernel;
mod keyfile;
mod netns;
mod nl;
mod resolve;
mod rtnl;
pub(crate) mod uapi;

pub use dns::available as dns_available;
pub use netns::is_current as is_current_netns;

use netlink_sys::constants::{NETLINK_GENERIC, NETLINK_ROUTE};
use nl::Conn;
use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use wg_exec_steps::{Backend, KernelError, Netns};

/// Netlink sockets opened inside one namespace.
struct NsConns {
    route: Conn,
    /// The "wireguard" family socket and id, opened on first use.
    genl: Option<(Conn, u16)>,
}

pub struct LinuxKernel {
    /// The namespace wg-exec started in; every excursion returns here.
    home: File,
    /// PID 1's namespace, opened at start: once capabilities are dropped, /proc/1/ns/net may
    /// no longer be ours to open (ptrace access rules).
    init: Result<File, KernelError>,
    conns: HashMap<Netns, NsConns>,
    ifindex: HashMap<(Netns, String), u32>,
    /// The processes a userspace start left running, by interface.
    started: HashMap<String, Vec<i32>>,
    /// Whether a userspace device's implementation is of boringtun-cli's kind, by interface.
    flavour: HashMap<String, bool>,
    /// Whether a device is served by a userspace implementation (true) or the kernel, by
    /// interface: what this run created, or what the journal recorded at up; else its UAPI
    /// socket, checked (see [`daemon::check_socket`]).
    backends: HashMap<String, bool>,
    /// Devices whose UAPI socket passed the check.
    verified: std::collections::HashSet<String>,
    /// Where a userspace device's daemon runs when nothing recorded it (down from the
    /// configuration): its socket namespace. A process serving the socket of that name in
    /// another namespace is another interface's, never stopped.
    daemon_ns: HashMap<String, Netns>,
    /// A read-only command (status): a stale UAPI socket is reported, never removed.
    read_only: bool,
    /// Set by a signal: endless retries (name resolution) give up.
    stop: Arc<AtomicBool>,
}

fn enodev() -> KernelError {
    KernelError::from_errno(libc::ENODEV, None)
}

impl LinuxKernel {
    pub fn new(stop: Arc<AtomicBool>) -> anyhow::Result<LinuxKernel> {
        let home = File::open("/proc/thread-self/ns/net")
            .map_err(|e| anyhow::anyhow!("cannot open this thread's network namespace: {e}"))?;
        let init = netns::open(&Netns::Init);
        Ok(LinuxKernel {
            home,
            init,
            conns: HashMap::new(),
            ifindex: HashMap::new(),
            started: HashMap::new(),
            flavour: HashMap::new(),
            backends: HashMap::new(),
            verified: Default::default(),
            daemon_ns: HashMap::new(),
            read_only: false,
            stop,
        })
    }

    /// A namespace's file: the cached one for PID 1's.
    fn ns_file(&self, ns: &Netns) -> Result<File, KernelError> {
        match ns {
            Netns::Init => match &self.init {
                Ok(f) => f.try_clone().map_err(|e| KernelError::from_io(&e)),
                Err(e) => Err(e.clone()),
            },
            other => netns::open(other),
        }
    }

    /// The one way into another namespace: None (nothing entered) for the current one, by
    /// name or by identity; else a guard that brings the thread back when dropped.
    fn enter(&self, ns: &Netns) -> Result<Option<netns::Entered<'_>>, KernelError> {
        match ns {
            Netns::Current => Ok(None),
            other => netns::Entered::enter(&self.ns_file(other)?, &self.home),
        }
    }

    /// Opens a socket inside `ns` (entering it only for the socket call).
    fn open_in(&self, ns: &Netns, protocol: isize) -> Result<Conn, KernelError> {
        let _inside = self.enter(ns)?;
        Conn::new(protocol).map_err(|e| KernelError::from_io(&e))
    }

    fn ns(&mut self, ns: &Netns) -> Result<&mut NsConns, KernelError> {
        if !self.conns.contains_key(ns) {
            let route = self.open_in(ns, NETLINK_ROUTE)?;
            self.conns.insert(ns.clone(), NsConns { route, genl: None });
        }
        Ok(self.conns.get_mut(ns).expect("inserted above"))
    }

    fn route(&mut self, ns: &Netns) -> Result<&mut Conn, KernelError> {
        Ok(&mut self.ns(ns)?.route)
    }

    fn genl(&mut self, ns: &Netns) -> Result<(&mut Conn, u16), KernelError> {
        if self.ns(ns)?.genl.is_none() {
            let mut conn = self.open_in(ns, NETLINK_GENERIC)?;
            let id = genl::family_id(&mut conn).map_err(|mut e| {
                if e.is_errno(libc::ENOENT) {
                    e.message = format!("the kernel has no WireGuard (generic netlink family \"wireguard\" not found): {}", e.message);
                }
                e
            })?;
            self.ns(ns)?.genl = Some((conn, id));
        }
        let (conn, id) = self.ns(ns)?.genl.as_mut().expect("set above");
        Ok((conn, *id))
    }

    /// The link's index, from the cache or the kernel; ENODEV when it does not exist.
    fn index(&mut self, ns: &Netns, name: &str) -> Result<u32, KernelError> {
        let key = (ns.clone(), name.to_string());
        if let Some(i) = self.ifindex.get(&key) {
            return Ok(*i);
        }
        let (index, _) = rtnl::get_link(self.route(ns)?, name)?.ok_or_else(enodev)?;
        self.ifindex.insert(key, index);
        Ok(index)
    }

    /// For a read-only command (status): no file is removed, not even a stale UAPI socket.
    pub fn set_read_only(&mut self) {
        self.read_only = true;
    }

    /// Down from the configuration (no journal): a configuration of the kernel backend never
    /// has its device taken for a userspace one (a socket of that name is another namespace's
    /// interface, or planted); for the others, only a process in the socket namespace
    /// `socket_ns` (where the daemon was started) or in the link's is taken for its daemon.
    pub fn expect_from_config(&mut self, name: &str, backend: &Backend, socket_ns: &Netns) {
        match backend {
            Backend::Kernel => {
                self.backends.insert(name.to_string(), false);
            }
            _ => {
                self.daemon_ns.insert(name.to_string(), socket_ns.clone());
            }
        }
    }

    /// Those of `pids` whose network namespace is `link_ns` or the recorded daemon namespace
    /// of `name` (a namespace that cannot be opened or compared matches nothing).
    fn in_namespaces(&self, name: &str, link_ns: &Netns, pids: Vec<i32>) -> Vec<i32> {
        let file = |ns: &Netns| match ns {
            Netns::Current => self.home.try_clone().ok(),
            other => self.ns_file(other).ok(),
        };
        let wanted: Vec<File> = std::iter::once(link_ns)
            .chain(self.daemon_ns.get(name))
            .filter_map(file)
            .collect();
        pids.into_iter()
            .filter(|p| {
                File::open(format!("/proc/{p}/ns/net"))
                    .map(|f| wanted.iter().any(|w| netns::same(&f, w)))
                    .unwrap_or(false)
            })
            .collect()
    }

    fn forget(&mut self, ns: &Netns, name: &str) {
        self.ifindex.remove(&(ns.clone(), name.to_string()));
    }

    /// Whether the userspace implementation serving `name` is of boringtun-cli's kind: it
    /// cannot update a peer in place, and carries a peer's settings over to the next peer of
    /// one request. Asked once per device (its `get` names its own public key).
    fn peers_carry_over(&mut self, name: &str) -> Result<bool, KernelError> {
        if let Some(b) = self.flavour.get(name) {
            return Ok(*b);
        }
        let b = !uapi::get(name)?.updates_in_place;
        self.flavour.insert(name.to_string(), b);
        Ok(b)
    }

    /// Whether `name` is served by a userspace implementation: what this run created or the
    /// journal recorded; else (status, refresh, reload) a checked UAPI socket. A socket that
    /// fails the check is not used: a warning names it and the kernel is asked.
    fn userspace(&mut self, name: &str) -> bool {
        if let Some(b) = self.backends.get(name) {
            return *b;
        }
        let b = match daemon::check_socket(name, &uapi::socket_path(name), &[], !self.read_only) {
            daemon::Socket::Served(_) => {
                self.verified.insert(name.to_string());
                true
            }
            daemon::Socket::Absent => false,
            daemon::Socket::Refused(why) => {
                log::warn!("{name}: not using its UAPI socket: {why}");
                false
            }
        };
        self.backends.insert(name.to_string(), b);
        b
    }

    /// [`Self::userspace`] before a UAPI request: a device known to be userspace has its socket
    /// checked once, against the processes wg-exec started or the journal recorded, before
    /// anything (a key) is sent to it.
    fn uapi_device(&mut self, name: &str) -> Result<bool, KernelError> {
        if !self.userspace(name) {
            return Ok(false);
        }
        if self.verified.contains(name) {
            return Ok(true);
        }
        let known = self.started.get(name).cloned().unwrap_or_default();
        match daemon::check_socket(name, &uapi::socket_path(name), &known, !self.read_only) {
            daemon::Socket::Refused(why) => Err(KernelError::new(format!(
                "refusing the UAPI socket of {name}: {why}"
            ))),
            // Absent: the request names the missing socket.
            daemon::Socket::Absent => Ok(true),
            daemon::Socket::Served(_) => {
                self.verified.insert(name.to_string());
                Ok(true)
            }
        }
    }

    fn genl_send(
        &mut self,
        ns: &Netns,
        msgs: Vec<netlink_packet_wireguard::WireguardMessage>,
    ) -> Result<(), KernelError> {
        let (conn, family) = self.genl(ns)?;
        genl::send_all(conn, family, msgs)
    }
}

/// Once per run, at the end: how many requests went to the kernel and to UAPI sockets.
impl Drop for LinuxKernel {
    fn drop(&mut self) {
        let ((messages, datagrams), (writes, reads)) = (nl::sent(), uapi::sent());
        log::debug!("requests: netlink {messages} ({datagrams} datagrams), uapi writes {writes}, uapi reads {reads}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wg_exec_steps::kernel::prelude::*;

    /// A device the journal recorded as a kernel one (no userspace processes) is never sent to
    /// a socket of its name: another namespace's interface of that name, or a planted one.
    #[test]
    fn the_journals_backend_wins_over_a_socket_of_that_name() {
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "needs root");
            eprintln!("SKIPPED (not counted as passed): needs root");
            return;
        }
        std::fs::create_dir_all("/var/run/wireguard").unwrap();
        let name = format!("wgk{}", std::process::id() % 100_000);
        let socket = uapi::socket_path(&name);
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let mut kernel = LinuxKernel::new(Arc::new(AtomicBool::new(false))).unwrap();
        kernel.expect_userspace(&name, &[]);
        assert!(!kernel.userspace(&name));
        assert!(!kernel.uapi_device(&name).unwrap());
        // Recorded as userspace, served by another process than the recorded one: refused.
        let mut kernel = LinuxKernel::new(Arc::new(AtomicBool::new(false))).unwrap();
        kernel.expect_userspace(&name, &[1]);
        let e = kernel.uapi_device(&name).unwrap_err();
        assert!(e.message.contains("refusing the UAPI socket"), "{e}");
        drop(listener);
        std::fs::remove_file(&socket).unwrap();
    }
}
