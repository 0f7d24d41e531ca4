//! The real kernel's links (rtnetlink), and the process of a userspace implementation.

use crate::linux::{daemon, enodev, rtnl, uapi, LinuxKernel};
use std::os::fd::AsRawFd;
use std::path::Path;
use wg_exec_steps::kernel::Links;
use wg_exec_steps::{Backend, KernelError, LinkState, Netns};

impl Links for LinuxKernel {
    fn link_add(&mut self, ns: &Netns, name: &str, backend: &Backend) -> Result<(), KernelError> {
        let userspace = match backend {
            Backend::Kernel => self.add_kernel_link(ns, name).map(|()| false)?,
            Backend::Userspace { program } => {
                self.add_userspace_link(ns, name, program).map(|()| true)?
            }
            Backend::Auto { userspace } => match self.add_kernel_link(ns, name) {
                Err(e) if e.is_errno(libc::EOPNOTSUPP) => {
                    log::info!("the kernel has no WireGuard ({e}); starting {userspace}");
                    self.add_userspace_link(ns, name, userspace)
                        .map(|()| true)?
                }
                other => other.map(|()| false)?,
            },
        };
        // What serves it is known from now on, whatever sockets appear.
        self.backends.insert(name.to_string(), userspace);
        self.forget(ns, name);
        self.index(ns, name).map(drop)
    }

    fn link_del(&mut self, ns: &Netns, name: &str) -> Result<(), KernelError> {
        let index = self.index(ns, name)?;
        let socket = uapi::socket_path(name);
        // Who serves a userspace device, found and held (pidfds) before its link goes (the
        // daemon may exit on its own then, and its pid be taken): the processes this run
        // started or the journal recorded, if they still are what they were, else a /proc scan.
        // A process found by the scan is taken only in the link's namespace or the daemon's:
        // wireguard-go serving the same name in another namespace binds the same socket path.
        let holders = match self.userspace(name) {
            true => match self
                .started
                .get(name)
                .map(|pids| daemon::hold_serving(name, &socket, pids))
                .filter(|held| !held.pids().is_empty())
            {
                Some(held) => Some(held),
                None => {
                    let all = daemon::uapi_holders(name, &socket);
                    let ours = self.in_namespaces(name, ns, all.clone());
                    if ours.is_empty() && !all.is_empty() {
                        log::warn!(
                            "{name}: {} is served by {all:?}, in another network namespace than the link's: left alone",
                            socket.display()
                        );
                        None
                    } else {
                        Some(daemon::hold_serving(name, &socket, &ours))
                    }
                }
            },
            false => None,
        };
        let started = std::time::Instant::now();
        let result = rtnl::del_link(self.route(ns)?, index);
        self.forget(ns, name);
        result?;
        let deleted = started.elapsed();
        if let Some(held) = holders {
            daemon::stop_userspace(&socket, &held)?;
            log::debug!(
                "{name}: link deleted in {deleted:.1?}, its userspace process {:?} gone after {:.1?}",
                held.pids(),
                started.elapsed()
            );
        }
        Ok(())
    }

    fn link_exists(&mut self, ns: &Netns, name: &str) -> Result<bool, KernelError> {
        Ok(rtnl::get_link(self.route(ns)?, name)?.is_some())
    }

    fn link_index(&mut self, ns: &Netns, name: &str) -> Result<u32, KernelError> {
        self.index(ns, name)
    }

    fn userspace_pids(&mut self, name: &str) -> Vec<i32> {
        if let Some(pids) = self.started.get(name) {
            return pids.clone();
        }
        match self.userspace(name) {
            true => daemon::uapi_holders(name, &uapi::socket_path(name)),
            false => Vec::new(),
        }
    }

    /// From the journal's record of the link: processes recorded = a userspace device served
    /// by them (only they may serve its socket); none = a kernel device (a socket of that name
    /// is another's: another namespace's interface, or planted).
    fn expect_userspace(&mut self, name: &str, pids: &[i32]) {
        self.backends.insert(name.to_string(), !pids.is_empty());
        if !pids.is_empty() {
            self.started.insert(name.to_string(), pids.to_vec());
        }
    }

    fn link_set_netns(&mut self, ns: &Netns, name: &str, to: &Netns) -> Result<(), KernelError> {
        let index = self.index(ns, name)?;
        let target = match to {
            Netns::Current => self
                .home
                .try_clone()
                .map_err(|e| KernelError::from_io(&e))?,
            other => self.ns_file(other)?,
        };
        let result = rtnl::set_netns(self.route(ns)?, index, target.as_raw_fd());
        self.forget(ns, name);
        result
    }

    fn link_mtu(&mut self, ns: &Netns, name: &str) -> Result<u32, KernelError> {
        let (_, mtu) = rtnl::get_link(self.route(ns)?, name)?.ok_or_else(enodev)?;
        Ok(mtu)
    }

    fn link_set_mtu(&mut self, ns: &Netns, name: &str, mtu: u32) -> Result<(), KernelError> {
        let index = self.index(ns, name)?;
        rtnl::set_mtu(self.route(ns)?, index, mtu)
    }

    fn link_set_up(&mut self, ns: &Netns, name: &str, up: bool) -> Result<(), KernelError> {
        let index = self.index(ns, name)?;
        rtnl::set_up(self.route(ns)?, index, up)
    }

    fn link_state(&mut self, ns: &Netns, name: &str) -> Result<Option<LinkState>, KernelError> {
        rtnl::link_state(self.route(ns)?, name)
    }
}

/// Creating the link: a kernel device by netlink, a userspace one by starting its program.
impl LinuxKernel {
    fn add_kernel_link(&mut self, ns: &Netns, name: &str) -> Result<(), KernelError> {
        rtnl::add_wireguard(self.route(ns)?, name)
    }

    fn add_userspace_link(
        &mut self,
        ns: &Netns,
        name: &str,
        program: &str,
    ) -> Result<(), KernelError> {
        if rtnl::get_link(self.route(ns)?, name)?.is_some() {
            return Err(KernelError::from_errno(
                libc::EEXIST,
                Some(&format!("a link named {name} already exists")),
            ));
        }
        let target = match ns {
            Netns::Current => None,
            other => Some(self.ns_file(other)?),
        };
        let socket = uapi::socket_path(name);
        let socket_before = file_identity(&socket);
        let started =
            match daemon::start_userspace(program, name, target.as_ref(), &self.home, &socket) {
                Ok(started) => started,
                Err(failed) => {
                    let left = self.undo_userspace_start(ns, name, &socket, socket_before);
                    return Err(with_undone(failed.error, &failed.pids, left));
                }
            };
        if let Some(s) = &started {
            self.started.insert(name.to_string(), s.known.clone());
        }
        if rtnl::get_link(self.route(ns)?, name)?.is_none() {
            // It serves the socket but made no link here: stop it.
            let error = KernelError::new(format!(
                "{program} started but created no link {name} in {ns}"
            ));
            self.started.remove(name);
            let held = started.map(|s| s.held).unwrap_or_default();
            daemon::stop_userspace(&socket, &held)?;
            let left = self.undo_userspace_start(ns, name, &socket, socket_before);
            return Err(with_undone(error, &held.pids(), left));
        }
        Ok(())
    }

    /// After a failed userspace start (its processes already ended): deletes the link named
    /// `name` in `ns` (there was none before the start) and the socket file, if it is not the
    /// one that was there before. Returns what it removed, for the error.
    fn undo_userspace_start(
        &mut self,
        ns: &Netns,
        name: &str,
        socket: &Path,
        socket_before: Option<(u64, u64)>,
    ) -> Vec<String> {
        let mut undone = Vec::new();
        self.forget(ns, name);
        let link = self.route(ns).and_then(|conn| rtnl::get_link(conn, name));
        match link {
            Ok(Some((index, _))) => {
                match self.route(ns).and_then(|conn| rtnl::del_link(conn, index)) {
                    Ok(()) => undone.push(format!("deleted link {name} in {ns}")),
                    Err(e) => {
                        log::error!("{name}: cannot delete the link a failed start left: {e}");
                        undone.push(format!("link {name} in {ns} LEFT: {e}"));
                    }
                }
            }
            Ok(None) => {}
            Err(e) => undone.push(format!("link {name} in {ns} not checked: {e}")),
        }
        let now = file_identity(socket);
        if now.is_some() && now != socket_before {
            match std::fs::remove_file(socket) {
                Ok(()) => undone.push(format!("removed {}", socket.display())),
                Err(e) => undone.push(format!("{} LEFT: {e}", socket.display())),
            }
        }
        undone
    }
}

/// (device, inode) of a file, None when there is none.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// A failed start's error, naming what was undone.
fn with_undone(mut error: KernelError, pids: &[i32], mut undone: Vec<String>) -> KernelError {
    if !pids.is_empty() {
        undone.insert(0, format!("ended its processes {pids:?}"));
    }
    if !undone.is_empty() {
        error.message = format!("{}; {}", error.message, undone.join(", "));
    }
    error
}
