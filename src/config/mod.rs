//! Loading and validating /etc/wg-exec/NAME.ron. Everything is checked before anything is touched,
//! and every error names the file, line:column and field.

pub mod derived;
mod locate;
pub(crate) mod raw;
pub use raw::StrOrInt;
mod validate;
pub mod wgquick;

pub use locate::{Locations, Pos, SourceMap};
pub use raw::{BackendChoice, PostSetupAt};
pub use validate::{
    check_interface_name, parse_allowed_ip, parse_endpoint, parse_fwmark, RouteTables,
};

use ipnet::IpNet;
use std::fmt;
use std::path::{Path, PathBuf};
use wg_exec_steps::{Backend, Endpoint, Key, SecretSource};

/// A validated interface.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, for messages.
    pub path: PathBuf,
    pub name: String,
    pub ips: Vec<IpNet>,
    pub private_key: SecretSource,
    pub generate_private_key_file: bool,
    pub listen_port: Option<u16>,
    pub pre_setup: Vec<String>,
    pub post_setup: Vec<String>,
    /// Where `post_setup` runs: see [`PostSetupAt`].
    pub post_setup_at: PostSetupAt,
    pub pre_shutdown: Vec<String>,
    pub post_shutdown: Vec<String>,
    pub table: Table,
    pub peers: Vec<Peer>,
    pub allowed_ips_as_routes: bool,
    pub socket_namespace: Option<String>,
    pub interface_namespace: Option<String>,
    pub fwmark: Option<u32>,
    /// A full tunnel for IPv4 only also blocks IPv6 (an unreachable ::/0 in its table).
    pub ipv6_leak_protection: bool,
    pub mtu: Option<u32>,
    /// wg-quick's automatic MTU, set after the peers (`mtu: "auto"`, or `table: "auto"` with no
    /// `mtu`); `mtu` is then None.
    pub auto_mtu: bool,
    pub metric: Option<u32>,
    pub dynamic_endpoint_refresh_seconds: u64,
    pub backend: Backend,
    /// DNS servers and domains for the link (`dns`).
    pub dns: Dns,
    /// Where each value was written, for errors found after loading (missing key files…).
    pub locations: SourceMap,
}

#[derive(Debug, Clone)]
pub struct Peer {
    /// As configured, else the public key.
    pub name: String,
    pub public_key: Key,
    pub preshared_key: Option<SecretSource>,
    pub allowed_ips: Vec<IpNet>,
    pub endpoint: Option<Endpoint>,
    pub dynamic_endpoint_refresh_seconds: Option<u64>,
    pub dynamic_endpoint_refresh_restart_seconds: Option<u64>,
    pub persistent_keepalive: Option<u16>,
}

impl Peer {
    /// The refresh period in force: the peer's own, else the interface's; 0 = never.
    pub fn refresh_seconds(&self, interface_default: u64) -> u64 {
        self.dynamic_endpoint_refresh_seconds
            .unwrap_or(interface_default)
    }
}

/// The configuration's `dns`: entries that are addresses are servers, `~name` entries routing
/// domains, the others search domains. The record of what was applied holds it as it is
/// (journal/applied).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dns {
    pub servers: Vec<std::net::IpAddr>,
    pub search: Vec<String>,
    /// Without the `~`; "." for `~.`.
    pub routing: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.search.is_empty() && self.routing.is_empty()
    }

    /// As the configuration writes them: servers, search domains, `~` routing domains.
    pub fn entries(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| s.to_string())
            .chain(self.search.iter().cloned())
            .chain(self.routing.iter().map(|d| format!("~{d}")))
            .collect()
    }
}

/// A routing table: its number and how the configuration wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub id: u32,
    pub label: String,
    /// `"auto"`, wg-quick's default: `id` is main, and a /0 allowed IP makes a full tunnel.
    pub auto: bool,
}

impl Config {
    /// wg-quick's full tunnel: `table: "auto"` and a peer with a /0 allowed IP. The /0 routes
    /// then go in a table of their own behind policy rules (see wg_exec_steps::policy).
    pub fn full_tunnel(&self) -> bool {
        self.table.auto
            && self
                .peers
                .iter()
                .any(|p| p.allowed_ips.iter().any(|n| n.prefix_len() == 0))
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// None where the problem has no place in the file (the interface name, a missing file).
    pub pos: Option<Pos>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.pos {
            write!(f, ":{}:{}", p.line, p.col)?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

/// Every problem found, all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A warning: printed, not fatal. Same shape as an error.
pub type Warning = ConfigError;

/// The configuration file of an interface: `--config FILE`, else `$WG_EXEC_CONFIG_DIR/NAME.ron`
/// (default `/etc/wg-exec/NAME.ron`), else wg-quick's `/etc/wireguard/NAME.conf` when only that
/// exists (`$WG_EXEC_WIREGUARD_DIR` replaces `/etc/wireguard`).
pub fn config_path(name: &str, explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    let dir = |var: &str, default: &str| {
        std::env::var_os(var)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default))
    };
    let ron = dir("WG_EXEC_CONFIG_DIR", "/etc/wg-exec").join(format!("{name}.ron"));
    let conf = dir("WG_EXEC_WIREGUARD_DIR", "/etc/wireguard").join(format!("{name}.conf"));
    match (ron.exists(), conf.exists()) {
        (false, true) => conf,
        _ => ron,
    }
}

/// Reads and validates the file. Returns the configuration and its warnings.
pub fn load(
    name: &str,
    path: &Path,
    tables: &RouteTables,
) -> Result<(Config, Vec<Warning>), ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            pos: None,
            field: String::new(),
            message: format!("cannot read the configuration: {e}"),
        }])
    })?;
    parse(name, path, &text, tables)
}

/// Validates `text` as if read from `path`: a wg-quick .conf by its extension or first line,
/// else RON.
pub fn parse(
    name: &str,
    path: &Path,
    text: &str,
    tables: &RouteTables,
) -> Result<(Config, Vec<Warning>), ConfigErrors> {
    if wgquick::looks_like_conf(path, text) {
        let read = wgquick::read(name, path, text)?;
        let (cfg, mut warnings) = validate::validate_with(name, path, read.map, read.raw, tables)?;
        warnings.extend(read.warnings);
        return Ok((cfg, warnings));
    }
    let raw = validate::deserialize(path, text)?;
    validate::validate(name, path, text, raw, tables)
}
