//! The kernel seam: one trait for everything privileged wg-exec does. The real implementation
//! (netlink, UAPI, setns, processes) lives in the binary; [`crate::fake::FakeKernel`] keeps state
//! in memory so that every plan and every rollback path is testable without root.

use crate::secret::Key;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// A network namespace as the configuration names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(from = "Option<String>", into = "Option<String>")
)]
pub enum Netns {
    /// The namespace wg-exec was started in (the module's `null`).
    Current,
    /// PID 1's network namespace (the module's `"init"`).
    Init,
    /// A named namespace, /run/netns/NAME.
    Named(String),
}

impl Netns {
    /// `None` → the current namespace, `"init"` → PID 1's, anything else → /run/netns/NAME.
    pub fn from_option(name: Option<&str>) -> Netns {
        match name {
            None => Netns::Current,
            Some("init") => Netns::Init,
            Some(n) => Netns::Named(n.to_string()),
        }
    }

    /// `ip -n NS ` prefix for `--print` (empty for the current and the init namespace, as the
    /// module treats both alike).
    pub fn ip_prefix(&self) -> String {
        match self {
            Netns::Named(n) => format!("ip -n {n}"),
            _ => "ip".to_string(),
        }
    }

    /// `ip netns exec NS ` prefix for commands that are not iproute2's.
    pub fn exec_prefix(&self) -> String {
        match self {
            Netns::Named(n) => format!("ip netns exec {n} "),
            _ => String::new(),
        }
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netns::Current => f.write_str("the current netns"),
            Netns::Init => f.write_str("the init netns"),
            Netns::Named(n) => write!(f, "netns {n}"),
        }
    }
}

/// Which WireGuard implementation backs the link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Backend {
    /// The kernel's when it has WireGuard, else the userspace program.
    Auto {
        userspace: String,
    },
    Kernel,
    /// A userspace implementation speaking the cross-platform UAPI (wireguard-go, boringtun-cli).
    Userspace {
        program: String,
    },
}

/// The kernel's answer to a failed request: errno and, when the kernel sent one, its
/// extended-ack text. Displays as "Unknown device type (os error 95)" style text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    pub errno: Option<i32>,
    pub message: String,
}

impl KernelError {
    pub fn new(message: impl Into<String>) -> KernelError {
        KernelError {
            errno: None,
            message: message.into(),
        }
    }

    /// From an errno, with the kernel's extended-ack text when there is one.
    pub fn from_errno(errno: i32, ext_ack: Option<&str>) -> KernelError {
        let base = std::io::Error::from_raw_os_error(errno).to_string();
        let message = match ext_ack {
            Some(text) if !text.is_empty() => format!("{text}: {base}"),
            _ => base,
        };
        KernelError {
            errno: Some(errno),
            message,
        }
    }

    pub fn from_io(err: &std::io::Error) -> KernelError {
        KernelError {
            errno: err.raw_os_error(),
            message: err.to_string(),
        }
    }

    pub fn is_errno(&self, errno: i32) -> bool {
        self.errno == Some(errno)
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KernelError {}

/// A batch request (many routes in one pipeline) in which some items failed. Every item not
/// listed in `failed` was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    pub failed: Vec<(usize, KernelError)>,
}

/// Where a secret comes from: the configuration itself or a file read at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Inline(Key),
    File(PathBuf),
}

impl SecretSource {
    /// How `--print` shows it: the path, or `<redacted>`.
    pub fn printable(&self) -> String {
        match self {
            SecretSource::Inline(_) => "<redacted>".to_string(),
            SecretSource::File(p) => p.display().to_string(),
        }
    }

    pub fn load(&self, kernel: &mut dyn Kernel) -> Result<Key, KernelError> {
        match self {
            SecretSource::Inline(k) => Ok(k.clone()),
            SecretSource::File(p) => kernel.read_secret_file(p),
        }
    }
}

/// Device-wide WireGuard settings of the key step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceSettings {
    pub private_key: Option<Key>,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
}

/// An endpoint as configured: a host name or address literal and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How hard to try a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// up and reload: with WG_ENDPOINT_RESOLUTION_RETRIES set, as `wg` does (a name that does not
    /// resolve then fails the step); else for a bounded time, after which the peer is
    /// configured without its endpoint and left to `wg-exec refresh`.
    Configure,
    /// refresh: one attempt each, within a bounded time.
    Once,
}

/// An endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Every address, in the resolver's order (the first is the one to use).
    Addrs(Vec<SocketAddr>),
    /// Did not resolve within the bound: configure the peer without it (the reason).
    Later(String),
    /// Failed for good.
    Failed(KernelError),
}

/// One peer as the kernel (or UAPI) receives it: keys loaded, endpoint resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSettings {
    pub public_key: Key,
    pub preshared_key: Option<Key>,
    pub endpoint: Option<SocketAddr>,
    /// Seconds; `Some(0)` turns keepalives off explicitly.
    pub persistent_keepalive: Option<u16>,
    pub allowed_ips: Vec<IpNet>,
}

/// A peer as the device holds it (read back with GET / `get=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePeer {
    pub public_key: Key,
    /// None when the device has none (or, for boringtun-cli, does not say).
    pub preshared_key: Option<Key>,
    /// What the device uses now: configured, or learnt by roaming.
    pub endpoint: Option<SocketAddr>,
    /// Seconds; 0 = off.
    pub persistent_keepalive: u16,
    pub allowed_ips: Vec<IpNet>,
    /// Seconds since the last handshake; None = never (or not reported).
    pub handshake_age: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// A device as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveDevice {
    /// None when no key is set, or when the implementation does not report it.
    pub private_key: Option<Key>,
    /// The device's public key when the implementation reports it without the private key.
    pub public_key: Option<Key>,
    /// The port the socket is bound to (chosen by the kernel when none was set).
    pub listen_port: u16,
    pub fwmark: u32,
    pub peers: Vec<LivePeer>,
    /// False when the implementation cannot change an existing peer in place (boringtun-cli):
    /// an update is then a removal and a new addition, and the peer's session restarts.
    pub updates_in_place: bool,
}

/// How a peer's allowed IPs change in an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedIpsChange {
    Unchanged,
    /// Only additions: appended without touching the others (no gap).
    Append(Vec<IpNet>),
    /// Some removed: the whole list replaces the old one.
    Replace,
}

/// A change to a peer that exists: only what changed is sent, as an update of that peer
/// (never creating it again if someone removed it meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerUpdate {
    /// The peer as it is to be afterwards (the endpoint as last known when it is not changed).
    pub peer: PeerSettings,
    pub preshared_key: bool,
    pub endpoint: bool,
    pub persistent_keepalive: bool,
    pub allowed_ips: AllowedIpsChange,
}

impl PeerUpdate {
    pub fn is_empty(&self) -> bool {
        !self.preshared_key
            && !self.endpoint
            && !self.persistent_keepalive
            && self.allowed_ips == AllowedIpsChange::Unchanged
    }
}

/// A link as rtnetlink shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub mtu: u32,
    pub up: bool,
}

/// A route to `dst` through the WireGuard link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Route {
    pub dst: IpNet,
    pub table: u32,
    pub metric: Option<u32>,
}

impl Route {
    /// A route with its metric as the kernel reports it back, so that a configured route and a
    /// live one compare equal: IPv4 metric 0 is reported as none, and IPv6 metric 0 becomes the
    /// default 1024, which is reported as none too.
    pub fn new(dst: IpNet, table: u32, metric: Option<u32>) -> Route {
        let metric = match (dst, metric) {
            (IpNet::V4(_), Some(0)) | (IpNet::V6(_), Some(0 | 1024)) => None,
            (_, m) => m,
        };
        Route { dst, table, metric }
    }
}

/// A routing policy rule, by every field wg-exec sets or reads. wg-exec adds its own with an
/// explicit priority and deletes them by all fields, priority included, so that another tool's
/// rule of the same shape is never touched (wg-quick deletes every "suppress_prefixlength 0"
/// rule it finds).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PolicyRule {
    pub v6: bool,
    pub priority: u32,
    /// The table looked up.
    pub table: u32,
    /// Matches packets with this mark (all 32 bits), or without it when `invert`.
    pub fwmark: Option<u32>,
    pub invert: bool,
    /// Results whose prefix length is at most this are ignored (0: the table's default route).
    pub suppress_prefixlength: Option<u32>,
    #[cfg_attr(feature = "serde", serde(skip))]
    /// Read back only: the rule has selectors or an action wg-exec does not model (from, to,
    /// iif, goto…), so it is never one of wg-exec's.
    pub other: bool,
}

impl fmt::Display for PolicyRule {
    /// As `ip rule` would take it: "-6 rule priority 31821 not fwmark 0xca6c lookup 51820".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}rule priority {}",
            if self.v6 { "-6 " } else { "-4 " },
            self.priority
        )?;
        if let Some(m) = self.fwmark {
            write!(
                f,
                "{} fwmark 0x{m:x}",
                if self.invert { " not" } else { "" }
            )?;
        }
        match self.table {
            254 => write!(f, " lookup main")?,
            t => write!(f, " lookup {t}")?,
        }
        if let Some(p) = self.suppress_prefixlength {
            write!(f, " suppress_prefixlength {p}")?;
        }
        Ok(())
    }
}

/// An nftables table, by family ("ip", "ip6") and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NftTable {
    pub family: String,
    pub name: String,
}

impl fmt::Display for NftTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.family, self.name)
    }
}

/// Everything privileged. Each method acts in the namespace it is given and returns the kernel's
/// reason on failure; callers add what they were doing.
pub trait Kernel {
    /// Whether a file exists (the key file of `generate_private_key_file`).
    fn file_exists(&mut self, path: &Path) -> Result<bool, KernelError>;
    /// Create a key file with a fresh private key: parent 0755 if missing, file 0600, atomic,
    /// never overwriting.
    fn generate_key_file(&mut self, path: &Path) -> Result<(), KernelError>;
    fn remove_file(&mut self, path: &Path) -> Result<(), KernelError>;
    /// Read a base64 key file into a zeroizing key.
    fn read_secret_file(&mut self, path: &Path) -> Result<Key, KernelError>;

    /// Load a kernel module. Callers tolerate failure, as the module does.
    fn modprobe(&mut self, module: &str) -> Result<(), KernelError>;
    /// Run a hook script with /bin/sh, DEVICE set, in a minimal environment.
    fn run_hook(&mut self, device: &str, script: &str) -> Result<(), KernelError>;

    fn link_add(&mut self, ns: &Netns, name: &str, backend: &Backend) -> Result<(), KernelError>;
    /// Delete the link; for a userspace device, also wait until its process let go of the
    /// UAPI socket. ENODEV when it does not exist.
    fn link_del(&mut self, ns: &Netns, name: &str) -> Result<(), KernelError>;
    fn link_exists(&mut self, ns: &Netns, name: &str) -> Result<bool, KernelError>;
    /// The link's index (for the journal).
    fn link_index(&mut self, ns: &Netns, name: &str) -> Result<u32, KernelError>;
    /// The processes of a userspace implementation serving `name` (for the journal); none for
    /// a kernel device.
    fn userspace_pids(&mut self, name: &str) -> Vec<i32>;
    /// The processes an earlier run recorded for `name` (from the journal), so that deleting
    /// the link stops exactly those.
    fn expect_userspace(&mut self, _name: &str, _pids: &[i32]) {}
    fn link_set_netns(&mut self, ns: &Netns, name: &str, to: &Netns) -> Result<(), KernelError>;
    fn link_mtu(&mut self, ns: &Netns, name: &str) -> Result<u32, KernelError>;
    fn link_set_mtu(&mut self, ns: &Netns, name: &str, mtu: u32) -> Result<(), KernelError>;
    fn link_set_up(&mut self, ns: &Netns, name: &str, up: bool) -> Result<(), KernelError>;

    fn addr_add(&mut self, ns: &Netns, name: &str, addr: &IpNet) -> Result<(), KernelError>;
    fn addr_del(&mut self, ns: &Netns, name: &str, addr: &IpNet) -> Result<(), KernelError>;

    fn wg_set_device(
        &mut self,
        ns: &Netns,
        name: &str,
        settings: &DeviceSettings,
    ) -> Result<(), KernelError>;
    /// Remove the private key, listen port and fwmark again.
    fn wg_clear_device(&mut self, ns: &Netns, name: &str) -> Result<(), KernelError>;
    /// Add (or update) peers. On failure, a prefix may have been applied.
    fn wg_set_peers(
        &mut self,
        ns: &Netns,
        name: &str,
        peers: &[PeerSettings],
    ) -> Result<(), KernelError>;
    /// Remove peers; absent ones are not an error.
    fn wg_remove_peers(&mut self, ns: &Netns, name: &str, keys: &[Key]) -> Result<(), KernelError>;
    /// Change existing peers, each as an update (see [`PeerUpdate`]).
    fn wg_update_peers(
        &mut self,
        ns: &Netns,
        name: &str,
        updates: &[PeerUpdate],
    ) -> Result<(), KernelError>;
    /// The device as it is now.
    fn wg_get(&mut self, ns: &Netns, name: &str) -> Result<LiveDevice, KernelError>;
    /// Resolve endpoints where the tunnel's UDP socket lives (the socket namespace, with its
    /// /etc/netns/NS files), all at once; one answer per endpoint, in order.
    fn resolve_endpoints(
        &mut self,
        ns: &Netns,
        endpoints: &[Endpoint],
        how: Resolve,
    ) -> Vec<Resolved>;

    /// The link's index, MTU and whether it is up; None when there is no such link.
    fn link_state(&mut self, ns: &Netns, name: &str) -> Result<Option<LinkState>, KernelError>;
    /// The addresses on the link, link-local ones left out.
    fn addr_list(&mut self, ns: &Netns, name: &str) -> Result<Vec<IpNet>, KernelError>;
    /// The routes through the link that are not the kernel's own (those of its addresses, the
    /// local table, multicast), in every table.
    fn route_list(&mut self, ns: &Netns, name: &str) -> Result<Vec<Route>, KernelError>;

    /// `ip route replace DST dev NAME table T [metric M]` for each route, in one pipeline.
    fn route_replace(&mut self, ns: &Netns, dev: &str, routes: &[Route]) -> Result<(), BatchError>;
    /// Delete routes through `dev`; absent ones are not an error.
    fn route_del(&mut self, ns: &Netns, dev: &str, routes: &[Route]) -> Result<(), BatchError>;

    // Full tunnels (`table: "auto"`): policy routing, a firewall table, a sysctl.

    /// Every routing policy rule of both families.
    fn rule_list(&mut self, ns: &Netns) -> Result<Vec<PolicyRule>, KernelError>;
    /// Adds a rule; EEXIST when one with all the same fields exists.
    fn rule_add(&mut self, ns: &Netns, rule: &PolicyRule) -> Result<(), KernelError>;
    /// Deletes the rule that matches every field, priority included; ENOENT when there is none.
    fn rule_del(&mut self, ns: &Netns, rule: &PolicyRule) -> Result<(), KernelError>;
    /// Every table number a route (of either family) or a rule (its table or its fwmark) uses.
    fn tables_in_use(&mut self, ns: &Netns) -> Result<BTreeSet<u32>, KernelError>;
    /// `ip route add unreachable DST table T` (or `del`); absent on delete is ENOENT/ESRCH.
    fn route_unreachable(
        &mut self,
        ns: &Netns,
        dst: &IpNet,
        table: u32,
        add: bool,
    ) -> Result<(), KernelError>;
    /// The destinations of every route in `table` (both families, any device or type), each
    /// with whether it is an unreachable route.
    fn table_routes(&mut self, ns: &Netns, table: u32) -> Result<Vec<(IpNet, bool)>, KernelError>;
    /// Loads an nftables script (`nft -f -`), atomically.
    fn nft_apply(&mut self, ns: &Netns, script: &str) -> Result<(), KernelError>;
    /// The nftables tables that exist.
    fn nft_tables(&mut self, ns: &Netns) -> Result<Vec<NftTable>, KernelError>;
    /// A sysctl's value ("net/ipv4/conf/all/src_valid_mark"), trimmed.
    fn sysctl_get(&mut self, ns: &Netns, path: &str) -> Result<String, KernelError>;
    fn sysctl_set(&mut self, ns: &Netns, path: &str, value: &str) -> Result<(), KernelError>;
    /// The MTU of the path to `dst` as the routing table has it: the route's `mtu`, else its
    /// output device's MTU. None when there is no route.
    fn route_mtu(&mut self, ns: &Netns, dst: IpAddr) -> Result<Option<u32>, KernelError>;
    /// The DNS backend serving the host now: systemd-resolved when its bus name has an owner,
    /// else a `resolvconf` program; None when there is neither.
    fn dns_available(&mut self) -> Option<DnsBackend>;
    /// Give link `name` (in `ns`, the host's namespace) these DNS settings through `backend`,
    /// and read them back where the backend can say. On failure, nothing is left set.
    fn dns_set(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
        settings: &DnsSettings,
    ) -> Result<(), KernelError>;
    /// Whether the link's DNS settings are still `settings` (status); None when the backend
    /// cannot say (resolvconf has no read-back).
    fn dns_matches(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
        settings: &DnsSettings,
    ) -> Result<Option<bool>, KernelError>;
    /// Remove the link's DNS settings; a link that is gone, or has none, is not an error.
    fn dns_revert(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
    ) -> Result<(), KernelError>;
}

/// Who applies a link's DNS settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DnsBackend {
    /// systemd-resolved, through its D-Bus API (org.freedesktop.resolve1).
    Resolved,
    /// A `resolvconf` program (openresolv, Debian's resolvconf or systemd's shim).
    Resolvconf,
}

impl DnsBackend {
    /// How messages and the journal name it.
    pub fn name(self) -> &'static str {
        match self {
            DnsBackend::Resolved => "systemd-resolved",
            DnsBackend::Resolvconf => "resolvconf",
        }
    }

    pub fn from_name(name: &str) -> Option<DnsBackend> {
        [DnsBackend::Resolved, DnsBackend::Resolvconf]
            .into_iter()
            .find(|b| b.name() == name)
    }
}

impl fmt::Display for DnsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The DNS settings of a link, as systemd-resolved takes them (see [`crate::dns`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsSettings {
    pub servers: Vec<std::net::IpAddr>,
    /// Search domains: single-label names are completed with them, and queries for names
    /// under them go to this link.
    pub search: Vec<String>,
    /// Routing-only domains, without their `~` ("." = every name).
    pub routing: Vec<String>,
    /// Whether the link's servers are asked for names that no link's domain matches.
    pub default_route: bool,
}

/// How the journal writes a namespace: none for the current one, "init", or the name.
impl From<Netns> for Option<String> {
    fn from(ns: Netns) -> Option<String> {
        match ns {
            Netns::Current => None,
            Netns::Init => Some("init".into()),
            Netns::Named(n) => Some(n),
        }
    }
}

impl From<Option<String>> for Netns {
    fn from(name: Option<String>) -> Netns {
        Netns::from_option(name.as_deref())
    }
}
