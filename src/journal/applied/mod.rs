//! What an up (or the last reload) applied: the configuration as it reached the device, without
//! any secret, in typed values (addresses and routes as networks, endpoints as host and port by
//! public key, the DNS entries and the full tunnel's shape as structures). Reload compares the
//! new configuration against it (it tells which addresses and routes are wg-exec's, and which
//! endpoint was configured, so that a roamed one is left alone), status reports drift against
//! it, and refresh follows its peers. Nothing in it is display text read back.
//!
//! It lives beside the journal in IFACE.applied.json, not in it, so that `down`, which reads
//! only the journal, stays fast at 10,000 peers. It is JSON (an internal file, read whole on
//! every reload: serde_json reads it several times faster than RON; see benches/record.rs).
//! A record written by wg-exec before this format (IFACE.applied.ron, version 1, display
//! strings) is read by [`legacy`] once and converted; the next write replaces it.

use crate::config::Config;
use crate::state::{Access, StateDir};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use wg_exec_steps::{Backend, Endpoint, Key, Netns, SecretSource};

/// A peer's public key, by which the record keeps what it knows of the peer: a valid WireGuard
/// key in base64, as `wg` and the configuration write it (and ordered so, as the record always
/// listed its peers). It holds no private key (a record has none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PublicKey(String);

impl PublicKey {
    pub fn of(key: &Key) -> PublicKey {
        PublicKey(key.to_base64())
    }

    pub fn key(&self) -> Key {
        Key::from_base64(&self.0, false).expect("checked when made")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        use base64::Engine;
        let text = String::deserialize(d)?;
        // 32 bytes in canonical base64 (44 characters, padded, no stray bits): what
        // `Key::to_base64` writes, and so what `key()` reads back.
        let mut bytes = [0u8; 33];
        match text.len() == 44
            && base64::engine::general_purpose::STANDARD.decode_slice(&text, &mut bytes) == Ok(32)
        {
            true => Ok(PublicKey(text)),
            false => Err(serde::de::Error::custom(format!(
                "{text:?} is not a public key as wg-exec writes it"
            ))),
        }
    }
}

/// Where the private key came from (never the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrivateKey {
    File(PathBuf),
    Inline,
}

impl std::fmt::Display for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrivateKey::File(p) => write!(f, "{}", p.display()),
            PrivateKey::Inline => f.write_str("inline"),
        }
    }
}

/// The configuration's `dns` as up applied it, recorded as the configuration holds it (the same
/// type: the record is not a second vocabulary).
pub use crate::config::Dns;

/// What of a full tunnel a reload cannot change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullTunnelShape {
    /// The families with a `/0` allowed IP.
    pub v4: bool,
    pub v6: bool,
    pub ipv6_leak_protection: bool,
    /// The configured fwmark; None: the table is chosen ("auto").
    pub fwmark: Option<u32>,
    pub addresses: Vec<IpNet>,
}

impl FullTunnelShape {
    pub fn of(cfg: &Config) -> Option<FullTunnelShape> {
        crate::config::derived::full_tunnel(cfg).map(|ft| FullTunnelShape {
            v4: ft.v4,
            v6: ft.v6,
            ipv6_leak_protection: ft.ipv6_leak_protection,
            fwmark: ft.fwmark,
            addresses: ft.addresses,
        })
    }

    /// How many families have their own default routes through the tunnel.
    pub fn families(&self) -> usize {
        usize::from(self.v4) + usize::from(self.v6)
    }
}

/// For messages (reload's "cannot change"): "0.0.0.0/0 and ::/0, ipv6_leak_protection true,
/// fwmark auto, addresses [192.0.2.1/24]".
impl std::fmt::Display for FullTunnelShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fams = match (self.v4, self.v6) {
            (true, true) => "0.0.0.0/0 and ::/0",
            (true, false) => "0.0.0.0/0",
            _ => "::/0",
        };
        let addrs: Vec<String> = self.addresses.iter().map(|a| a.to_string()).collect();
        write!(
            f,
            "{fams}, ipv6_leak_protection {}, fwmark {}, addresses [{}]",
            self.ipv6_leak_protection,
            self.fwmark
                .map_or("auto".to_string(), |m| format!("0x{m:x}")),
            addrs.join(", ")
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub version: u32,
    pub socket_namespace: Netns,
    pub interface_namespace: Netns,
    pub backend: Backend,
    pub addresses: Vec<IpNet>,
    pub mtu: Option<u32>,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
    pub private_key: PrivateKey,
    pub table: u32,
    pub metric: Option<u32>,
    pub allowed_ips_as_routes: bool,
    /// Route destinations (in `table`, with `metric`).
    pub routes: Vec<IpNet>,
    /// Each peer's endpoint as configured, by public key.
    pub endpoints: BTreeMap<PublicKey, Endpoint>,
    /// Every configured peer, by public key, with its name when it has one of its own (None:
    /// it is known by its key; see [`Applied::name`]).
    pub names: BTreeMap<PublicKey, Option<String>>,
    /// For each peer whose endpoint is a host name, by public key: its refresh period and the
    /// delay after a failed resolution, in seconds (`wg-exec refresh` follows these).
    pub refresh: BTreeMap<PublicKey, Refresh>,
    /// For each peer whose endpoint is a host name, by public key: what the name resolved to
    /// when up or a reload set it, or the address `wg-exec refresh` last pushed or adopted.
    /// Refresh compares every answer with it: an answer without it is a DNS change (followed);
    /// a live endpoint elsewhere while the answer still has it is a roam (left alone). Absent:
    /// the name has not resolved yet.
    pub resolved_endpoints: BTreeMap<PublicKey, SocketAddr>,
    /// A full tunnel's shape, which reload cannot change; None without one.
    pub full_tunnel: Option<FullTunnelShape>,
    /// The full tunnel's table and fwmark as up chose it.
    pub full_tunnel_table: Option<u32>,
    /// The `dns` entries.
    pub dns: Dns,
    /// In a union: the routes of the earlier record, in its table and with its metric, which a
    /// killed reload may not have removed yet. Written only in the next record of a reload that
    /// finishes a killed one (so that a second kill forgets nothing); a record wg-exec promotes
    /// has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_routes: Vec<wg_exec_steps::Route>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    /// 0: not re-resolved (but resolved until it resolves when up could not).
    pub period: u64,
    pub restart: u64,
}

/// The refresh settings of a configured peer, None when its endpoint is no host name.
pub fn refresh_of(cfg: &Config, p: &crate::config::Peer) -> Option<Refresh> {
    let ep = p.endpoint.as_ref()?;
    if ep.host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let period = p.refresh_seconds(cfg.dynamic_endpoint_refresh_seconds);
    Some(Refresh {
        period,
        restart: p.dynamic_endpoint_refresh_restart_seconds.unwrap_or(period),
    })
}

/// The format this wg-exec writes (1 was the RON record of display strings, see [`legacy`]).
pub const VERSION: u32 = 2;

/// The backend as reload's messages name it: ("Auto", "wireguard-go"), ("Kernel", "")…
pub fn backend_name(b: &Backend) -> (String, String) {
    match b {
        Backend::Auto { userspace } => ("Auto".into(), userspace.clone()),
        Backend::Kernel => ("Kernel".into(), String::new()),
        Backend::Userspace { program } => ("Userspace".into(), program.clone()),
    }
}

impl Applied {
    pub fn of(cfg: &Config) -> Applied {
        let (mut endpoints, mut names, mut refresh) =
            (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for p in &cfg.peers {
            let key = PublicKey::of(&p.public_key);
            if let Some(e) = &p.endpoint {
                endpoints.insert(key.clone(), e.clone());
            }
            if let Some(r) = refresh_of(cfg, p) {
                refresh.insert(key.clone(), r);
            }
            let named = p.name != key.as_str();
            names.insert(key, named.then(|| p.name.clone()));
        }
        Applied {
            version: VERSION,
            socket_namespace: crate::config::derived::socket_ns(cfg),
            interface_namespace: crate::config::derived::interface_ns(cfg),
            backend: cfg.backend.clone(),
            addresses: cfg.ips.clone(),
            mtu: cfg.mtu,
            listen_port: cfg.listen_port,
            fwmark: cfg.fwmark,
            private_key: match &cfg.private_key {
                SecretSource::File(p) => PrivateKey::File(p.clone()),
                SecretSource::Inline(_) => PrivateKey::Inline,
            },
            table: cfg.table.id,
            metric: cfg.metric,
            allowed_ips_as_routes: cfg.allowed_ips_as_routes,
            routes: crate::config::derived::routes(cfg)
                .into_iter()
                .map(|r| r.dst)
                .collect(),
            endpoints,
            names,
            refresh,
            resolved_endpoints: BTreeMap::new(),
            full_tunnel: FullTunnelShape::of(cfg),
            full_tunnel_table: None,
            dns: cfg.dns.clone(),
            earlier_routes: Vec::new(),
        }
    }

    /// How messages name a recorded peer: its name, else its key.
    pub fn name(&self, key: &PublicKey) -> Option<String> {
        self.names
            .get(key)
            .map(|n| n.clone().unwrap_or_else(|| key.to_string()))
    }

    /// Records endpoints that were just resolved and set (by up, a reload or refresh).
    pub fn set_resolved(&mut self, set: impl IntoIterator<Item = (Key, SocketAddr)>) {
        for (key, addr) in set {
            self.resolved_endpoints.insert(PublicKey::of(&key), addr);
        }
    }

    /// Keeps the baselines of `earlier` for the peers whose configured endpoint is the same
    /// host name here; the others (a new name, an address, no peer) have none.
    pub fn keep_resolved(&mut self, earlier: &Applied) {
        self.resolved_endpoints = earlier
            .resolved_endpoints
            .iter()
            .filter(|(key, _)| {
                self.refresh.contains_key(*key)
                    && self.endpoints.contains_key(*key)
                    && self.endpoints.get(*key) == earlier.endpoints.get(*key)
            })
            .map(|(k, a)| (k.clone(), *a))
            .collect();
    }

    /// The fwmark the device should have: the configured one, else the full tunnel's.
    pub fn device_fwmark(&self) -> u32 {
        self.fwmark
            .filter(|m| *m != 0)
            .or(self.full_tunnel_table)
            .unwrap_or(0)
    }

    /// The routes wg-exec added, as routes.
    pub fn route_list(&self) -> Vec<wg_exec_steps::Route> {
        let mut out: Vec<wg_exec_steps::Route> = Vec::new();
        if self.allowed_ips_as_routes {
            out.extend(
                self.routes
                    .iter()
                    .map(|dst| wg_exec_steps::Route::new(*dst, self.table, self.metric)),
            );
        }
        let mut seen: std::collections::HashSet<wg_exec_steps::Route> =
            out.iter().cloned().collect();
        for r in &self.earlier_routes {
            if seen.insert(r.clone()) {
                out.push(r.clone());
            }
        }
        out
    }

    /// This record (the last one completed) and `next` (the one a reload was applying when it
    /// was killed) together, so that the next reload finishes what the killed one began:
    /// - addresses and routes of both are wg-exec's (each route in its own table, with its own
    ///   metric, also when routes were switched off),
    /// - an endpoint counts as recorded only where both agree, so a changed or new one is sent
    ///   again (sending it twice is harmless; not sending it would leave the old one),
    /// - a fwmark either set is wg-exec's, so one the configuration no longer has is cleared.
    pub fn union(&self, next: &Applied) -> Applied {
        let mut u = next.clone();
        for a in &self.addresses {
            if !u.addresses.contains(a) {
                u.addresses.push(*a);
            }
        }
        u.earlier_routes = self.route_list();
        u.endpoints = self
            .endpoints
            .iter()
            .filter(|(key, ep)| next.endpoints.get(*key).is_none_or(|n| n == *ep))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let endpoints = &u.endpoints;
        u.resolved_endpoints
            .retain(|key, _| endpoints.contains_key(key));
        u.fwmark = next.fwmark.or(self.fwmark);
        u.full_tunnel_table = next.full_tunnel_table.or(self.full_tunnel_table);
        u
    }
}

pub fn path_for(dir: &Path, iface: &str) -> PathBuf {
    dir.join(format!("{iface}.applied.json"))
}

/// Where a reload writes the record it is applying, until it is done.
pub fn next_path_for(dir: &Path, iface: &str) -> PathBuf {
    dir.join(format!("{iface}.applied-next.json"))
}

/// The name an older wg-exec gave the record at `path` (IFACE.applied.ron for
/// IFACE.applied.json): read when the new one is absent, removed with it and when it is written.
pub fn legacy_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?.strip_suffix(".json")?;
    Some(path.with_file_name(format!("{name}.ron")))
}

/// Reads a record for a command that acts on it: in a directory or file wg-exec does not trust,
/// it is refused; at most [`crate::state::MAX_FILE`] bytes are read.
pub fn load(path: &Path) -> Result<Option<Applied>, String> {
    load_as(path, Access::Change)
}

/// [`load`] for a command that only shows it (status): an untrusted one is read with a warning.
pub fn load_read_only(path: &Path) -> Result<Option<Applied>, String> {
    load_as(path, Access::Read)
}

fn load_as(path: &Path, access: Access) -> Result<Option<Applied>, String> {
    let read = |path: &Path| {
        StateDir::of_file(path, access).and_then(|d| match d {
            Some((dir, name)) => dir.read(&name),
            None => Ok(None),
        })
    };
    match read(path) {
        Ok(Some(bytes)) => parse(&bytes)
            .map(Some)
            .map_err(|e| format!("{} {e}", path.display())),
        Ok(None) => match legacy_path(path) {
            Some(old) => match read(&old) {
                Ok(Some(bytes)) => legacy::parse(&bytes)
                    .map(Some)
                    .map_err(|e| format!("{} {e}", old.display())),
                Ok(None) => Ok(None),
                Err(e) => Err(e.to_string()),
            },
            None => Ok(None),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// The bytes of a record; the error follows the file's name ("is unreadable: …").
pub fn parse(bytes: &[u8]) -> Result<Applied, String> {
    #[derive(Deserialize)]
    struct Head {
        version: u32,
    }
    match serde_json::from_slice::<Head>(bytes) {
        Err(e) => return Err(format!("is unreadable: {e}")),
        Ok(Head { version: VERSION }) => {}
        Ok(Head { version: v }) => {
            return Err(format!(
                "has format version {v}; this wg-exec reads version {VERSION}"
            ))
        }
    }
    let a = serde_json::from_slice::<Applied>(bytes).map_err(|e| format!("is unreadable: {e}"))?;
    checked(a)
}

/// Status, reload and refresh enter the record's namespaces: a name that leaves /run/netns is
/// not one wg-exec wrote.
fn checked(a: Applied) -> Result<Applied, String> {
    for (field, ns) in [
        ("socket_namespace", &a.socket_namespace),
        ("interface_namespace", &a.interface_namespace),
    ] {
        super::vet::netns(ns).map_err(|e| format!("is not one wg-exec wrote: {field}: {e}"))?;
    }
    Ok(a)
}

/// The bytes [`save`] writes.
pub fn to_bytes(applied: &Applied) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec(applied).map_err(std::io::Error::other)
}

/// Writes atomically (temporary file made O_EXCL and 0600, fsync, rename) through the state
/// directory; a record of the older format beside it goes (this one replaces it).
pub fn save(path: &Path, applied: &Applied) -> std::io::Result<()> {
    let bytes = to_bytes(applied)?;
    let (dir, name) = super::open_for_change(path)?;
    dir.write_atomic(&name, &bytes)?;
    remove_legacy(&dir, path)
}

fn remove_legacy(dir: &StateDir, path: &Path) -> std::io::Result<()> {
    match legacy_path(path)
        .as_deref()
        .and_then(Path::file_name)
        .and_then(|f| f.to_str())
    {
        Some(old) => dir.remove(old),
        None => Ok(()),
    }
}

/// Removes a record (and one of the older format); a missing one is fine.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match super::open_for_change(path) {
        Ok((dir, name)) => {
            dir.remove(&name)?;
            remove_legacy(&dir, path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Renames the record a reload applied (`from`) to the current one (`to`), in one directory.
pub fn promote(from: &Path, to: &Path) -> std::io::Result<()> {
    let (dir, from) = super::open_for_change(from)?;
    let to_name = to
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", to.display())))?;
    dir.rename(&from, to_name)?;
    remove_legacy(&dir, to)
}

pub mod legacy;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, RouteTables};

    const B: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    const C: &str = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";

    fn applied(b_endpoint: &str) -> Applied {
        let text = format!(
            "Interface(private_key_file: \"/k\", dynamic_endpoint_refresh_seconds: 5, peers: [
               Peer(public_key: \"{B}\", allowed_ips: [], endpoint: \"{b_endpoint}\"),
               Peer(public_key: \"{C}\", allowed_ips: [], endpoint: \"c.example:51820\")])"
        );
        let (cfg, _) =
            config::parse("wg0", Path::new("wg0.ron"), &text, &RouteTables::builtin()).unwrap();
        Applied::of(&cfg)
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn k(text: &str) -> PublicKey {
        PublicKey::of(&wg_exec_steps::Key::from_base64(text, false).unwrap())
    }

    #[test]
    fn the_baseline_is_typed_and_an_older_record_has_none() {
        let mut rec = applied("b.example:51820");
        rec.set_resolved([(
            wg_exec_steps::Key::from_base64(B, false).unwrap(),
            a("203.0.113.2:51820"),
        )]);
        let back = parse(&to_bytes(&rec).unwrap()).unwrap();
        assert_eq!(
            back.resolved_endpoints,
            BTreeMap::from([(k(B), a("203.0.113.2:51820"))])
        );
        assert_eq!(back, rec);
        // A version 1 record written before the field existed reads with no baseline.
        let older = format!(
            "(version: 1, socket_namespace: None, interface_namespace: None, backend: \"Kernel\",
              userspace_implementation: \"\", addresses: [], mtu: None, listen_port: None,
              fwmark: None, private_key: \"/k\", table: 254, metric: None,
              allowed_ips_as_routes: true, routes: [], endpoints: {{\"{B}\": \"b.example:51820\"}},
              names: {{\"{B}\": \"{B}\"}})"
        );
        let back = legacy::parse(older.as_bytes()).unwrap();
        assert!(back.resolved_endpoints.is_empty());
        assert_eq!(
            back.endpoints[&k(B)],
            Endpoint {
                host: "b.example".into(),
                port: 51820
            }
        );
    }

    /// Version 1 wrote the full tunnel's shape as the line its Display still prints, and DNS
    /// entries as the configuration writes them: each reads back as the value it was made from.
    #[test]
    fn version_1_lines_read_back_as_the_values_they_were_made_from() {
        let shapes = [
            FullTunnelShape {
                v4: true,
                v6: false,
                ipv6_leak_protection: false,
                fwmark: Some(0xca6c),
                addresses: vec!["192.0.2.1/24".parse().unwrap()],
            },
            FullTunnelShape {
                v4: false,
                v6: true,
                ipv6_leak_protection: true,
                fwmark: None,
                addresses: Vec::new(),
            },
            FullTunnelShape {
                v4: true,
                v6: true,
                ipv6_leak_protection: true,
                fwmark: None,
                addresses: vec![
                    "192.0.2.1/24".parse().unwrap(),
                    "2001:db8::1/64".parse().unwrap(),
                ],
            },
        ];
        for shape in shapes {
            assert_eq!(legacy::full_tunnel(&shape.to_string()), Some(shape));
        }
        assert_eq!(legacy::full_tunnel("0.0.0.0/0, fwmark auto"), None);
        let dns = Dns {
            servers: vec![
                "192.0.2.53".parse().unwrap(),
                "2001:db8::53".parse().unwrap(),
            ],
            search: vec!["corp.example".into()],
            routing: vec!["lab.example".into(), ".".into()],
        };
        assert_eq!(legacy::dns(&dns.entries()), dns);
        assert_eq!(
            legacy::endpoint("[2001:db8::1]:51820"),
            Some(Endpoint {
                host: "2001:db8::1".into(),
                port: 51820
            })
        );
        assert_eq!(legacy::endpoint("b.example"), None);
    }

    #[test]
    fn a_public_key_is_a_key_in_the_spelling_wg_exec_writes() {
        let ok = format!("\"{B}\"");
        assert_eq!(serde_json::from_str::<PublicKey>(&ok).unwrap(), k(B));
        for bad in [
            "\"AAAA\"",
            "\"not base64!\"",
            "\" xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\"",
            // Stray bits after the 32 bytes: another spelling of the same key.
            "\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh=\"",
        ] {
            assert!(serde_json::from_str::<PublicKey>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reload_keeps_the_baselines_of_unchanged_names_only() {
        let mut earlier = applied("b.example:51820");
        earlier.resolved_endpoints = BTreeMap::from([
            (k(B), a("203.0.113.2:51820")),
            (k(C), a("198.51.100.3:51820")),
        ]);
        // The same configuration: everything stays (a no-op reload writes nothing).
        let mut same = applied("b.example:51820");
        same.keep_resolved(&earlier);
        assert_eq!(same, earlier);
        // B's endpoint is another name now: its baseline goes, C's stays.
        let mut moved = applied("b2.example:51820");
        moved.keep_resolved(&earlier);
        assert_eq!(
            moved.resolved_endpoints,
            BTreeMap::from([(k(C), a("198.51.100.3:51820"))])
        );
        // An address instead of a name: no baseline (refresh does not follow it).
        let mut fixed = applied("203.0.113.9:51820");
        fixed.keep_resolved(&earlier);
        assert!(!fixed.resolved_endpoints.contains_key(&k(B)));
        // A killed reload that was changing B's endpoint: B's endpoint and baseline are not
        // recorded (the next reload sends it again).
        let mut next = applied("b2.example:51820");
        next.keep_resolved(&earlier);
        let u = earlier.union(&next);
        assert!(!u.endpoints.contains_key(&k(B)));
        assert!(!u.resolved_endpoints.contains_key(&k(B)));
        assert!(u.resolved_endpoints.contains_key(&k(C)));
    }

    #[test]
    fn a_record_whose_namespace_leaves_run_netns_is_refused() {
        let mut good = applied("b.example:51820");
        good.socket_namespace = Netns::Named("ns-a".into());
        good.interface_namespace = Netns::Init;
        parse(&to_bytes(&good).unwrap()).unwrap();
        for bad in ["../../dev/null", "/tmp/fifo", "..", ""] {
            let mut rec = applied("b.example:51820");
            rec.interface_namespace = Netns::Named(bad.into());
            let e = parse(&to_bytes(&rec).unwrap()).unwrap_err();
            assert_eq!(
                e,
                format!("is not one wg-exec wrote: interface_namespace: {bad:?} is not a namespace name")
            );
            let mut rec = applied("b.example:51820");
            rec.socket_namespace = Netns::Named(bad.into());
            let e = parse(&to_bytes(&rec).unwrap()).unwrap_err();
            assert!(e.contains("socket_namespace"), "{e}");
        }
    }
}
