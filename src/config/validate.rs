//! Checks of a configuration: the module's assertions, keys, CIDRs, ranges, names, and the
//! warnings. All problems are collected, so that one run shows every one of them.

use super::locate::{Pos, SourceMap};
use super::raw::{BackendChoice, RawInterface, RawPeer, StrOrInt, INTERFACE_FIELDS};
use super::{Config, ConfigError, ConfigErrors, Dns, Peer, Table, Warning};
use ipnet::IpNet;
use ron::error::Error as RonError;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use wg_exec_steps::{Backend, Endpoint, Key, SecretSource};

const PEER_FIELDS: &[&str] = &[
    "name",
    "public_key",
    "preshared_key",
    "preshared_key_file",
    "allowed_ips",
    "endpoint",
    "dynamic_endpoint_refresh_seconds",
    "dynamic_endpoint_refresh_restart_seconds",
    "persistent_keepalive",
];

/// Parses RON into the raw structs; a syntax or type error becomes one positioned error.
pub fn deserialize(path: &Path, text: &str) -> Result<RawInterface, ConfigErrors> {
    let options =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    options.from_str::<RawInterface>(text).map_err(|e| {
        // ron's span starts before the offending token (at the white space after a colon) and
        // ends at it: the end is what a person wants to see.
        let start = Pos {
            line: e.span.start.line,
            col: e.span.start.col,
        };
        let end = Pos {
            line: e.span.end.line,
            col: e.span.end.col,
        };
        let locations = SourceMap::new(text);
        // "peers[2]" when the error is inside the third peer.
        let peer_prefix = |pos: Pos| {
            locations
                .path_at(pos)
                .filter(|p| p.starts_with("peers["))
                .and_then(|p| p.find(']').map(|i| format!("{}.", &p[..=i])))
                .unwrap_or_default()
        };
        let (pos, field, message) = match &e.code {
            RonError::NoSuchStructField {
                expected,
                found,
                outer,
            } => {
                let outer = outer.as_deref().unwrap_or("Interface");
                let prefix = if outer == "Peer" {
                    peer_prefix(start)
                } else {
                    String::new()
                };
                (
                    start,
                    format!("{prefix}{found}"),
                    unknown_field(found, outer, expected),
                )
            }
            RonError::MissingStructField { field, outer } => {
                let outer = outer.as_deref().unwrap_or("Interface");
                let prefix = if outer == "Peer" {
                    peer_prefix(start)
                } else {
                    String::new()
                };
                (
                    start,
                    format!("{prefix}{field}"),
                    format!("{outer} is missing the required field `{field}`"),
                )
            }
            RonError::Eof => (end, String::new(), "the file ends too early".to_string()),
            other => (
                end,
                locations.path_at(end).unwrap_or_default(),
                other.to_string(),
            ),
        };
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            pos: Some(pos),
            field,
            message,
        }])
    })
}

/// "unknown field `mtuu` in Interface; did you mean `mtu`?" or the list of valid fields.
fn unknown_field(found: &str, outer: &str, expected: &[&str]) -> String {
    let valid: &[&str] = match outer {
        "Peer" => PEER_FIELDS,
        "Interface" => INTERFACE_FIELDS,
        _ => expected,
    };
    let nearest = valid
        .iter()
        .map(|v| (levenshtein(found, v), *v))
        .min()
        .filter(|(d, v)| *d <= 2.max(v.len() / 4));
    match nearest {
        Some((_, v)) => format!("unknown field `{found}` in {outer}; did you mean `{v}`?"),
        None => format!(
            "unknown field `{found}` in {outer}; valid fields are {}",
            valid.join(", ")
        ),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Table names from iproute2's files, plus the built-in ones.
#[derive(Debug, Clone)]
pub struct RouteTables {
    names: HashMap<String, u32>,
}

impl RouteTables {
    /// Reads `rt_tables` and `rt_tables.d/*.conf` under each directory (later ones win).
    pub fn load(dirs: &[&Path]) -> RouteTables {
        let mut names = HashMap::new();
        for dir in dirs {
            let mut files = vec![dir.join("rt_tables")];
            if let Ok(rd) = std::fs::read_dir(dir.join("rt_tables.d")) {
                let mut extra: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                    .collect();
                extra.sort();
                files.extend(extra);
            }
            for f in files {
                if let Ok(text) = std::fs::read_to_string(&f) {
                    for line in text.lines() {
                        let line = line.split('#').next().unwrap_or("");
                        let mut words = line.split_whitespace();
                        if let (Some(id), Some(name)) = (words.next(), words.next()) {
                            if let Some(id) = parse_u32(id) {
                                names.insert(name.to_string(), id);
                            }
                        }
                    }
                }
            }
        }
        for (name, id) in wg_exec_steps::route::NAMED_TABLES {
            names.insert(name.to_string(), id);
        }
        RouteTables { names }
    }

    /// The system's tables: /usr/share/iproute2 (newer iproute2) then /etc/iproute2.
    pub fn system() -> RouteTables {
        RouteTables::load(&[Path::new("/usr/share/iproute2"), Path::new("/etc/iproute2")])
    }

    pub fn builtin() -> RouteTables {
        RouteTables::load(&[])
    }

    fn resolve(&self, text: &str) -> Result<u32, String> {
        if let Some(id) = parse_u32(text) {
            return match id {
                0 => Err("table 0 is not a routing table".into()),
                id => Ok(id),
            };
        }
        self.names.get(text).copied().ok_or_else(|| {
            format!("unknown routing table `{text}`: not a number and not in /etc/iproute2/rt_tables or rt_tables.d/*.conf")
        })
    }
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

/// A firewall mark: decimal or 0x-hex within 32 bits (also "off" = 0, as `wg` takes it).
pub fn parse_fwmark(s: &str) -> Result<u32, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    parse_u32(s).ok_or_else(|| {
        format!("`{s}` is not a firewall mark: use decimal or 0x-hex within 32 bits")
    })
}

/// An allowed IP: a CIDR whose host bits are zero.
pub fn parse_allowed_ip(s: &str) -> Result<IpNet, String> {
    let net = parse_cidr(s)?;
    if net.trunc() != net {
        return Err(format!(
            "`{s}` has host bits set; did you mean `{}`?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// A CIDR; a bare address means a host prefix (/32 or /128), as `ip` and `wg` take it.
fn parse_cidr(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(format!(
        "`{s}` is not an address with a prefix length (CIDR)"
    ))
}

/// `host:port`, `ipv4:port` or `[ipv6]:port`, port 1-65535.
pub fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    let bad = || format!("`{s}` is not an endpoint: use host:port, ipv4:port or [ipv6]:port");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        h.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{h}` in `{s}` is not an IPv6 address"))?;
        (h, p)
    } else {
        let (h, p) = s.rsplit_once(':').ok_or_else(bad)?;
        if h.contains(':') {
            return Err(format!(
                "`{s}`: an IPv6 endpoint needs brackets, as in [2001:db8::1]:51820"
            ));
        }
        if h.parse::<std::net::Ipv4Addr>().is_err() && !valid_host_name(h) {
            return Err(format!("`{h}` in `{s}` is not a host name or IPv4 address"));
        }
        (h, p)
    };
    let port: u16 = p_u16(port).ok_or_else(|| format!("port `{port}` in `{s}` is not 1-65535"))?;
    if port == 0 {
        return Err(format!("port `0` in `{s}` is not 1-65535"));
    }
    Ok(Endpoint {
        host: host.to_string(),
        port,
    })
}

fn p_u16(s: &str) -> Option<u16> {
    match !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        true => s.parse().ok(),
        false => None,
    }
}

fn valid_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Linux interface names: 1-15 bytes, no '/', ':' or white space, not "." or "..".
pub fn check_interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "`{name}` is {} bytes long; an interface name has 1 to 15",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("`{name}` is not a valid interface name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
    {
        return Err(format!(
            "`{name}` contains {c:?}; an interface name has no '/', ':' or white space"
        ));
    }
    Ok(())
}

/// Collects errors and warnings with positions.
struct Checker<'a> {
    file: &'a Path,
    loc: SourceMap,
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

impl Checker<'_> {
    fn at(&self, field: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            pos: Some(self.loc.get(field)),
            field: self.loc.display(field),
            message,
        }
    }

    fn error(&mut self, field: &str, message: String) {
        let e = self.at(field, message);
        self.errors.push(e);
    }

    fn warn(&mut self, field: &str, message: String) {
        let w = self.at(field, message);
        self.warnings.push(w);
    }

    fn key(&mut self, field: &str, text: &str, secret: bool) -> Option<Key> {
        match Key::from_base64(text, secret) {
            Ok(k) => Some(k),
            Err(e) => {
                self.error(field, format!("not a WireGuard key: {e}"));
                None
            }
        }
    }

    fn range(&mut self, field: &str, value: i64, lo: i64, hi: i64, what: &str) -> Option<i64> {
        if value < lo || value > hi {
            self.error(field, format!("{value} is out of range: {what}"));
            None
        } else {
            Some(value)
        }
    }
}

pub fn validate(
    name: &str,
    path: &Path,
    text: &str,
    raw: RawInterface,
    tables: &RouteTables,
) -> Result<(Config, Vec<Warning>), ConfigErrors> {
    validate_with(name, path, SourceMap::new(text), raw, tables)
}

/// [`validate`] with positions already known (a .conf file).
pub fn validate_with(
    name: &str,
    path: &Path,
    loc: SourceMap,
    raw: RawInterface,
    tables: &RouteTables,
) -> Result<(Config, Vec<Warning>), ConfigErrors> {
    let mut c = Checker {
        file: path,
        loc,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    if let Err(m) = check_interface_name(name) {
        c.errors.push(ConfigError {
            file: path.to_path_buf(),
            pos: None,
            field: "interface name (command line)".into(),
            message: m,
        });
    }

    // The module's three assertions.
    let private_key = match (&raw.private_key, &raw.private_key_file) {
        (Some(_), Some(_)) => {
            c.error(
                "private_key",
                "set either private_key or private_key_file, not both".into(),
            );
            None
        }
        (None, None) => {
            c.error(
                "",
                "exactly one of private_key and private_key_file must be set".into(),
            );
            None
        }
        (Some(k), None) => {
            if raw.generate_private_key_file {
                c.error(
                    "generate_private_key_file",
                    "generate_private_key_file needs private_key_file, and private_key unset"
                        .into(),
                );
            }
            c.warn(
                "private_key",
                "the private key is written inline; prefer private_key_file (with generate_private_key_file)".into(),
            );
            c.key("private_key", k, true).map(SecretSource::Inline)
        }
        (None, Some(f)) => match f.is_empty() {
            true => {
                c.error("private_key_file", "an empty path".into());
                None
            }
            false => Some(SecretSource::File(PathBuf::from(f))),
        },
    };

    let mut ips: Vec<IpNet> = Vec::new();
    for (i, s) in raw.ips.iter().enumerate() {
        match parse_cidr(s) {
            Ok(n) => match ips.iter().position(|x| x.addr() == n.addr()) {
                Some(first) => c.error(
                    &format!("ips[{i}]"),
                    format!(
                        "{} is already ips[{first}]: an address is added once",
                        n.addr()
                    ),
                ),
                None => ips.push(n),
            },
            Err(m) => c.error(&format!("ips[{i}]"), m),
        }
    }

    let listen_port = raw
        .listen_port
        .and_then(|p| c.range("listen_port", p, 0, 65535, "a port is 0-65535 (0 = any)"))
        .map(|p| p as u16);

    let has_v6 = ips.iter().any(|n| matches!(n, IpNet::V6(_)));
    let mut auto_mtu = false;
    let mtu = match &raw.mtu {
        None => None,
        Some(StrOrInt::Str(s)) if s.eq_ignore_ascii_case("auto") => {
            auto_mtu = true;
            None
        }
        Some(StrOrInt::Str(s)) => {
            c.error(
                "mtu",
                format!("`{s}` is not an MTU: a number, or \"auto\" (wg-quick's: from the routes to the endpoints)"),
            );
            None
        }
        Some(StrOrInt::Int(m)) => {
            let lo = if has_v6 { 1280 } else { 68 };
            let why = if has_v6 {
                "with an IPv6 address the MTU must be 1280-65535"
            } else {
                "the kernel takes 68-65535"
            };
            i64::try_from(*m)
                .ok()
                .and_then(|m| c.range("mtu", m, lo, 65535, why))
                .or_else(|| {
                    if i64::try_from(*m).is_err() {
                        c.error("mtu", format!("{m}: {why}"));
                    }
                    None
                })
        }
    };
    let metric = raw
        .metric
        .and_then(|m| c.range("metric", m, 0, u32::MAX as i64, "a metric is 0-4294967295"));

    let fwmark = match &raw.fwmark {
        None => None,
        Some(StrOrInt::Str(s)) => match parse_fwmark(s) {
            Ok(m) => Some(m),
            Err(m) => {
                c.error("fwmark", m);
                None
            }
        },
        Some(StrOrInt::Int(n)) => match u32::try_from(*n) {
            Ok(m) => Some(m),
            Err(_) => {
                c.error("fwmark", format!("{n} does not fit in 32 bits"));
                None
            }
        },
    };

    let dns = check_dns(&mut c, &raw);
    let table = match &raw.table {
        // wg-quick's `Table = off`: no routes at all, as allowed_ips_as_routes: false (below).
        StrOrInt::Str(s) if s.eq_ignore_ascii_case("off") => Ok(Table {
            id: 254,
            label: "off".into(),
            auto: false,
        }),
        // wg-quick's: routes in main, and a /0 makes a full tunnel with its own table.
        StrOrInt::Str(s) if s.eq_ignore_ascii_case("auto") => Ok(Table {
            id: 254,
            label: "main".into(),
            auto: true,
        }),
        StrOrInt::Str(s) => tables.resolve(s).map(|id| Table {
            id,
            label: s.clone(),
            auto: false,
        }),
        StrOrInt::Int(n) => match u32::try_from(*n) {
            Ok(0) | Err(_) => Err(format!("{n} is not a routing table (1-4294967295)")),
            Ok(id) => Ok(Table {
                id,
                label: id.to_string(),
                auto: false,
            }),
        },
    };
    let table = table.map_err(|m| c.error("table", m)).ok();
    let allowed_ips_as_routes =
        raw.allowed_ips_as_routes && table.as_ref().is_none_or(|t| t.label != "off");

    for (field, ns) in [
        ("socket_namespace", &raw.socket_namespace),
        ("interface_namespace", &raw.interface_namespace),
    ] {
        if let Some(n) = ns {
            if n.is_empty() || n.contains('/') || n == "." || n == ".." {
                c.error(field, format!("`{n}` is not a namespace name"));
            }
        }
    }
    if raw.socket_namespace.as_deref() == Some("init") {
        // The module allows it; it means PID 1's namespace, as for interface_namespace.
        log::debug!("socket_namespace \"init\" means PID 1's network namespace");
    }
    if raw.dynamic_endpoint_refresh_seconds < 0 {
        c.error(
            "dynamic_endpoint_refresh_seconds",
            "must be 0 (never) or a number of seconds".into(),
        );
    }
    if raw.userspace_implementation.trim().is_empty() {
        c.error("userspace_implementation", "an empty program name".into());
    }

    let peers = check_peers(&mut c, &raw.peers);

    if let Some(t) = &table {
        if t.auto && !raw.allowed_ips_as_routes {
            c.error(
                "table",
                "`auto` routes the allowed IPs (a /0 through its own table with policy rules), which allowed_ips_as_routes: false turns off; drop one of the two".into(),
            );
        }
        let full = t.auto
            && peers
                .iter()
                .any(|p| p.allowed_ips.iter().any(|n| n.prefix_len() == 0));
        if let Some(m @ 253..=255) = fwmark.filter(|_| full) {
            let name = wg_exec_steps::route::table_name(m);
            c.error(
                "fwmark",
                format!("{m} is table {name}: a full tunnel's fwmark is also its table, whose default route it replaces; choose another, or leave it unset for a free table"),
            );
        }
        if allowed_ips_as_routes && t.id == 254 && !t.auto {
            for (i, p) in peers.iter().enumerate() {
                for (j, a) in p.allowed_ips.iter().enumerate() {
                    if a.prefix_len() == 0 {
                        c.warn(
                            &format!("peers[{i}].allowed_ips[{j}]"),
                            format!("{a} becomes a route in table main: it takes over the default route and can cut off the endpoint; set allowed_ips_as_routes: false or use another table with policy routing"),
                        );
                    }
                }
            }
        }
    }
    overlaps(&mut c, &peers);

    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    let backend = match raw.backend {
        BackendChoice::Auto => Backend::Auto {
            userspace: raw.userspace_implementation.clone(),
        },
        BackendChoice::Kernel => Backend::Kernel,
        BackendChoice::Userspace => Backend::Userspace {
            program: raw.userspace_implementation.clone(),
        },
    };
    // wg-quick's automatic MTU: asked for, or `table: "auto"` (wg-quick's default) without an
    // MTU.
    let auto_mtu = auto_mtu || (mtu.is_none() && table.as_ref().is_some_and(|t| t.auto));
    let config = Config {
        path: path.to_path_buf(),
        name: name.to_string(),
        ips,
        private_key: private_key.expect("checked above"),
        generate_private_key_file: raw.generate_private_key_file,
        listen_port,
        pre_setup: raw.pre_setup.0,
        post_setup: raw.post_setup.0,
        post_setup_at: raw.post_setup_at,
        pre_shutdown: raw.pre_shutdown.0,
        post_shutdown: raw.post_shutdown.0,
        table: table.expect("checked above"),
        peers,
        allowed_ips_as_routes,
        socket_namespace: raw.socket_namespace,
        interface_namespace: raw.interface_namespace,
        fwmark,
        ipv6_leak_protection: raw.ipv6_leak_protection,
        mtu: mtu.map(|m| m as u32),
        auto_mtu,
        metric: metric.map(|m| m as u32),
        dynamic_endpoint_refresh_seconds: raw.dynamic_endpoint_refresh_seconds as u64,
        backend,
        dns,
        locations: c.loc,
    };
    Ok((config, c.warnings))
}

/// `dns`: addresses are servers, `~name` routing domains, other names search domains. At least
/// one server (wg-quick silently ignores domains without one), and the link in the host's
/// namespace, which is the one systemd-resolved and resolvconf serve.
fn check_dns(c: &mut Checker, raw: &RawInterface) -> Dns {
    let mut dns = Dns::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, entry) in raw.dns.iter().enumerate() {
        let field = format!("dns[{i}]");
        let key = entry.trim_end_matches('.').to_ascii_lowercase();
        if let Some(first) = seen.insert(key, i) {
            c.error(&field, format!("`{entry}` is already dns[{first}]"));
            continue;
        }
        if let Ok(ip) = entry.parse::<IpAddr>() {
            if ip.is_unspecified() || ip.is_multicast() {
                c.error(&field, format!("`{entry}` cannot be a DNS server"));
            } else {
                dns.servers.push(ip);
            }
        } else if let Some(name) = entry.strip_prefix('~') {
            if name == "." || valid_domain(name) {
                dns.routing.push(name.to_string());
            } else {
                c.error(&field, format!("`{entry}`: `{name}` is not a domain name; a routing domain is `~` and a domain (`~corp.example`), or `~.` for every name"));
            }
        } else if entry == "." {
            c.error(
                &field,
                "`.` cannot be a search domain; `~.` sends every query to these servers".into(),
            );
        } else if valid_domain(entry) {
            dns.search.push(entry.clone());
        } else {
            c.error(&field, format!("`{entry}` is neither an IP address (a DNS server) nor a domain name (a search domain, or `~domain` for a routing domain)"));
        }
    }
    if dns.servers.is_empty() && !(dns.search.is_empty() && dns.routing.is_empty()) {
        c.error(
            "dns",
            "domains without a DNS server: add the address of a server that answers for them (wg-quick silently ignores DNS = with domains only)".into(),
        );
    }
    if !raw.dns.is_empty() {
        let ns = raw
            .interface_namespace
            .as_ref()
            .map(|n| ("interface_namespace", n))
            .or_else(|| {
                raw.socket_namespace
                    .as_ref()
                    .map(|n| ("socket_namespace", n))
            });
        if let Some((field, n)) = ns.filter(|(_, n)| n.as_str() != "init") {
            c.error(
                "dns",
                format!("the link ends up in network namespace `{n}` ({field}), but systemd-resolved and resolvconf serve the host's namespace; set DNS inside that namespace yourself (a post_setup hook writing /etc/netns/{n}/resolv.conf) and drop `dns`"),
            );
        }
    }
    dns
}

/// A DNS name: labels of 1-63 letters, digits, '-' or '_', 253 bytes at most, a final dot
/// allowed.
fn valid_domain(name: &str) -> bool {
    valid_host_name(name) && !name.starts_with('.')
}

fn check_peers(c: &mut Checker, raw: &[RawPeer]) -> Vec<Peer> {
    let mut peers = Vec::with_capacity(raw.len());
    // Borrowed from `raw`: no copy of each name (or key text) only to look for duplicates.
    let mut names: HashMap<&str, usize> = HashMap::with_capacity(raw.len());
    let mut keys: HashMap<[u8; 32], usize> = HashMap::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        // A field's path is spelled out only when something is said about it.
        let f = |field: &str| format!("peers[{i}].{field}");
        let public_key = match Key::from_base64(&p.public_key, false) {
            Ok(k) => Some(k),
            Err(e) => {
                c.error(&f("public_key"), format!("not a WireGuard key: {e}"));
                None
            }
        };
        if let Some(k) = &public_key {
            if let Some(first) = keys.insert(*k.as_bytes(), i) {
                c.error(
                    &f("public_key"),
                    format!("the same public key as peers[{first}]"),
                );
            }
        }
        let preshared_key = match (&p.preshared_key, &p.preshared_key_file) {
            (Some(_), Some(_)) => {
                c.error(
                    &f("preshared_key"),
                    "set at most one of preshared_key and preshared_key_file".into(),
                );
                None
            }
            (Some(k), None) => {
                c.warn(
                    &f("preshared_key"),
                    "the preshared key is written inline; prefer preshared_key_file".into(),
                );
                c.key(&f("preshared_key"), k, true)
                    .map(SecretSource::Inline)
            }
            (None, Some(file)) if file.is_empty() => {
                c.error(&f("preshared_key_file"), "an empty path".into());
                None
            }
            (None, Some(file)) => Some(SecretSource::File(PathBuf::from(file))),
            (None, None) => None,
        };
        let mut allowed_ips = Vec::with_capacity(p.allowed_ips.len());
        for (j, s) in p.allowed_ips.iter().enumerate() {
            match parse_allowed_ip(s) {
                Ok(n) => allowed_ips.push(n),
                Err(m) => c.error(&f(&format!("allowed_ips[{j}]")), m),
            }
        }
        let endpoint = p.endpoint.as_ref().and_then(|e| {
            parse_endpoint(e)
                .map_err(|m| c.error(&f("endpoint"), m))
                .ok()
        });
        let keepalive = p.persistent_keepalive.and_then(|k| {
            c.range(
                &f("persistent_keepalive"),
                k,
                0,
                65535,
                "seconds are 0-65535 (0 = off)",
            )
        });
        let mut seconds = |field: &str, v: Option<i64>| {
            v.and_then(|s| c.range(&f(field), s, 0, i64::MAX, "seconds cannot be negative"))
                .map(|s| s as u64)
        };
        let refresh = seconds(
            "dynamic_endpoint_refresh_seconds",
            p.dynamic_endpoint_refresh_seconds,
        );
        let restart = seconds(
            "dynamic_endpoint_refresh_restart_seconds",
            p.dynamic_endpoint_refresh_restart_seconds,
        );
        let name: &str = match &p.name {
            Some(n) if n.is_empty() => {
                c.error(&f("name"), "an empty peer name".into());
                continue;
            }
            Some(n) => n,
            None => p.public_key.trim(),
        };
        if let Some(first) = names.insert(name, i) {
            if p.name.is_some() {
                c.error(&f("name"), format!("the same name as peers[{first}]"));
            }
        }
        let Some(public_key) = public_key else {
            continue;
        };
        peers.push(Peer {
            name: name.to_string(),
            public_key,
            preshared_key,
            allowed_ips,
            endpoint,
            dynamic_endpoint_refresh_seconds: refresh,
            dynamic_endpoint_refresh_restart_seconds: restart,
            persistent_keepalive: keepalive.map(|k| k as u16),
        });
    }
    peers
}

/// Warns about allowed IPs of different peers that overlap (the kernel routes the overlap to the
/// more specific one, which surprises people). Sort-and-sweep: O(n log n) for 10,000s of prefixes.
fn overlaps(c: &mut Checker, peers: &[Peer]) {
    // (family, first address, last address, peer, index in peer)
    let mut all: Vec<(u8, u128, u128, usize, usize)> = Vec::new();
    for (i, p) in peers.iter().enumerate() {
        for (j, n) in p.allowed_ips.iter().enumerate() {
            let (fam, lo, hi) = match n {
                IpNet::V4(v) => (
                    4,
                    u32::from(v.network()) as u128,
                    u32::from(v.broadcast()) as u128,
                ),
                IpNet::V6(v) => (6, u128::from(v.network()), u128::from(v.broadcast())),
            };
            all.push((fam, lo, hi, i, j));
        }
    }
    // Outer (wider) prefixes before the ones they contain.
    all.sort_unstable_by(|a, b| {
        (a.0, a.1, std::cmp::Reverse(a.2)).cmp(&(b.0, b.1, std::cmp::Reverse(b.2)))
    });
    let mut open: Vec<(u8, u128, usize, usize)> = Vec::new();
    let mut reported: HashSet<(usize, usize)> = HashSet::new();
    let mut found = Vec::new();
    for &(fam, lo, hi, i, j) in &all {
        open.retain(|&(f, end, _, _)| f == fam && end >= lo);
        if let Some(&(_, _, oi, oj)) = open.iter().rev().find(|o| o.2 != i) {
            if reported.insert((oi, i)) {
                found.push((i, j, oi, oj));
            }
        }
        open.push((fam, hi, i, j));
    }
    for (i, j, oi, oj) in found {
        c.warn(
            &format!("peers[{i}].allowed_ips[{j}]"),
            format!(
                "{} overlaps {} of peers[{oi}] ({})",
                peers[i].allowed_ips[j], peers[oi].allowed_ips[oj], peers[oi].name
            ),
        );
    }
}
