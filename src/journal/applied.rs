//! What an up (or the last reload) applied: the configuration as it reached the device, without
//! any secret. Reload compares the new configuration against it (it tells which addresses and
//! routes are wg-exec's, and which endpoint was configured, so that a roamed one is left alone),
//! and status reports drift against it. It lives beside the journal in IFACE.applied.ron, not in
//! it, so that `down`, which reads only the journal, stays fast at 10,000 peers.

use crate::config::Config;
use crate::state::{Access, StateDir};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use wg_exec_steps::{Backend, Netns, SecretSource};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub version: u32,
    pub socket_namespace: Netns,
    pub interface_namespace: Netns,
    /// "Auto", "Kernel" or "Userspace".
    pub backend: String,
    pub userspace_implementation: String,
    pub addresses: Vec<String>,
    pub mtu: Option<u32>,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
    /// The private key's file, or "inline".
    pub private_key: String,
    pub table: u32,
    pub metric: Option<u32>,
    pub allowed_ips_as_routes: bool,
    /// Route destinations (in `table`, with `metric`).
    pub routes: Vec<String>,
    /// Each peer's endpoint as configured ("host:port"), by public key.
    pub endpoints: BTreeMap<String, String>,
    /// Each peer's name, by public key (for messages).
    pub names: BTreeMap<String, String>,
    /// For each peer whose endpoint is a host name, by public key: its refresh period and the
    /// delay after a failed resolution, in seconds (`wg-exec refresh` follows these).
    #[serde(default)]
    pub refresh: BTreeMap<String, Refresh>,
    /// For each peer whose endpoint is a host name, by public key: what the name resolved to
    /// when up or a reload set it, or the address `wg-exec refresh` last pushed or adopted.
    /// Refresh compares every answer with it: an answer without it is a DNS change (followed);
    /// a live endpoint elsewhere while the answer still has it is a roam (left alone). Absent:
    /// the name has not resolved yet (or an older wg-exec wrote the record).
    #[serde(default)]
    pub resolved_endpoints: BTreeMap<String, SocketAddr>,
    /// A full tunnel's shape (families, leak protection, fwmark, addresses), which reload
    /// cannot change; None without one.
    #[serde(default)]
    pub full_tunnel: Option<String>,
    /// The full tunnel's table and fwmark as up chose it.
    #[serde(default)]
    pub full_tunnel_table: Option<u32>,
    /// The `dns` entries (servers, search domains, `~` routing domains).
    #[serde(default)]
    pub dns: Vec<String>,
    /// In a union (never written): the routes of the earlier record, in its table and with its
    /// metric, which a killed reload may not have removed yet.
    #[serde(skip)]
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

pub const VERSION: u32 = 1;

/// What of a full tunnel reload cannot change, as one comparable line.
pub fn full_tunnel_shape(cfg: &Config) -> Option<String> {
    crate::config::derived::full_tunnel(cfg).map(|ft| {
        let fams = match (ft.v4, ft.v6) {
            (true, true) => "0.0.0.0/0 and ::/0",
            (true, false) => "0.0.0.0/0",
            _ => "::/0",
        };
        let addrs: Vec<String> = ft.addresses.iter().map(|a| a.to_string()).collect();
        format!(
            "{fams}, ipv6_leak_protection {}, fwmark {}, addresses [{}]",
            ft.ipv6_leak_protection,
            ft.fwmark.map_or("auto".to_string(), |m| format!("0x{m:x}")),
            addrs.join(", ")
        )
    })
}

pub fn backend_name(b: &Backend) -> (String, String) {
    match b {
        Backend::Auto { userspace } => ("Auto".into(), userspace.clone()),
        Backend::Kernel => ("Kernel".into(), String::new()),
        Backend::Userspace { program } => ("Userspace".into(), program.clone()),
    }
}

impl Applied {
    pub fn of(cfg: &Config) -> Applied {
        let (backend, userspace_implementation) = backend_name(&cfg.backend);
        Applied {
            version: VERSION,
            socket_namespace: crate::config::derived::socket_ns(cfg),
            interface_namespace: crate::config::derived::interface_ns(cfg),
            backend,
            userspace_implementation,
            addresses: cfg.ips.iter().map(|a| a.to_string()).collect(),
            mtu: cfg.mtu,
            listen_port: cfg.listen_port,
            fwmark: cfg.fwmark,
            private_key: match &cfg.private_key {
                SecretSource::File(p) => p.display().to_string(),
                SecretSource::Inline(_) => "inline".into(),
            },
            table: cfg.table.id,
            metric: cfg.metric,
            allowed_ips_as_routes: cfg.allowed_ips_as_routes,
            routes: crate::config::derived::routes(cfg)
                .iter()
                .map(|r| r.dst.to_string())
                .collect(),
            endpoints: cfg
                .peers
                .iter()
                .filter_map(|p| {
                    p.endpoint
                        .as_ref()
                        .map(|e| (p.public_key.to_base64(), e.to_string()))
                })
                .collect(),
            names: cfg
                .peers
                .iter()
                .map(|p| (p.public_key.to_base64(), p.name.clone()))
                .collect(),
            refresh: cfg
                .peers
                .iter()
                .filter_map(|p| refresh_of(cfg, p).map(|r| (p.public_key.to_base64(), r)))
                .collect(),
            resolved_endpoints: BTreeMap::new(),
            full_tunnel: full_tunnel_shape(cfg),
            full_tunnel_table: None,
            dns: cfg.dns.entries(),
            earlier_routes: Vec::new(),
        }
    }

    /// Records endpoints that were just resolved and set (by up, a reload or refresh).
    pub fn set_resolved(
        &mut self,
        set: impl IntoIterator<Item = (wg_exec_steps::Key, SocketAddr)>,
    ) {
        for (key, addr) in set {
            self.resolved_endpoints.insert(key.to_base64(), addr);
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
                    .filter_map(|d| d.parse().ok())
                    .map(|dst| wg_exec_steps::Route::new(dst, self.table, self.metric)),
            );
        }
        for r in &self.earlier_routes {
            if !out.contains(r) {
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
                u.addresses.push(a.clone());
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
    dir.join(format!("{iface}.applied.ron"))
}

/// Where a reload writes the record it is applying, until it is done.
pub fn next_path_for(dir: &Path, iface: &str) -> PathBuf {
    dir.join(format!("{iface}.applied-next.ron"))
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
    let read = StateDir::of_file(path, access).and_then(|d| match d {
        Some((dir, name)) => dir.read(&name),
        None => Ok(None),
    });
    match read {
        Ok(Some(bytes)) => parse(&bytes)
            .map(Some)
            .map_err(|e| format!("{} {e}", path.display())),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The bytes of a record; the error follows the file's name ("is unreadable: …").
pub fn parse(bytes: &[u8]) -> Result<Applied, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("is unreadable: {e}"))?;
    ron::from_str::<Applied>(text)
        .map_err(|e| format!("is unreadable: {e}"))
        .and_then(|a| match a.version {
            VERSION => Ok(a),
            v => Err(format!(
                "has format version {v}; this wg-exec reads version {VERSION}"
            )),
        })
        .and_then(|a| {
            // Status, reload and refresh enter these namespaces: a name that leaves
            // /run/netns is not one wg-exec wrote.
            for (field, ns) in [
                ("socket_namespace", &a.socket_namespace),
                ("interface_namespace", &a.interface_namespace),
            ] {
                super::vet::netns(ns)
                    .map_err(|e| format!("is not one wg-exec wrote: {field}: {e}"))?;
            }
            Ok(a)
        })
}

/// Writes atomically (temporary file made O_EXCL and 0600, fsync, rename) through the state
/// directory.
pub fn save(path: &Path, applied: &Applied) -> std::io::Result<()> {
    let text = ron::ser::to_string_pretty(applied, ron::ser::PrettyConfig::default())
        .map_err(std::io::Error::other)?;
    let (dir, name) = super::open_for_change(path)?;
    dir.write_atomic(&name, text.as_bytes())
}

/// Removes a record; a missing one is fine.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match super::open_for_change(path) {
        Ok((dir, name)) => dir.remove(&name),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Renames the record a reload applied (`from`) to the current one (`to`), in one directory.
pub fn promote(from: &Path, to: &Path) -> std::io::Result<()> {
    let (dir, from) = super::open_for_change(from)?;
    let to = to
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", to.display())))?;
    dir.rename(&from, to)
}

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

    #[test]
    fn the_baseline_is_typed_and_an_older_record_has_none() {
        let mut rec = applied("b.example:51820");
        rec.set_resolved([(
            wg_exec_steps::Key::from_base64(B, false).unwrap(),
            a("203.0.113.2:51820"),
        )]);
        let text = ron::ser::to_string(&rec).unwrap();
        let back: Applied = ron::from_str(&text).unwrap();
        assert_eq!(
            back.resolved_endpoints,
            BTreeMap::from([(B.to_string(), a("203.0.113.2:51820"))])
        );
        // A record written before the field existed reads with no baseline.
        let older = text.replace(
            &format!("resolved_endpoints:{{\"{B}\":\"203.0.113.2:51820\"}},"),
            "",
        );
        assert_ne!(older, text, "the field was not found in {text}");
        let back: Applied = ron::from_str(&older).unwrap();
        assert!(back.resolved_endpoints.is_empty());
    }

    #[test]
    fn a_reload_keeps_the_baselines_of_unchanged_names_only() {
        let mut earlier = applied("b.example:51820");
        earlier.resolved_endpoints = BTreeMap::from([
            (B.to_string(), a("203.0.113.2:51820")),
            (C.to_string(), a("198.51.100.3:51820")),
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
            BTreeMap::from([(C.to_string(), a("198.51.100.3:51820"))])
        );
        // An address instead of a name: no baseline (refresh does not follow it).
        let mut fixed = applied("203.0.113.9:51820");
        fixed.keep_resolved(&earlier);
        assert!(!fixed.resolved_endpoints.contains_key(B));
        // A killed reload that was changing B's endpoint: B's endpoint and baseline are not
        // recorded (the next reload sends it again).
        let mut next = applied("b2.example:51820");
        next.keep_resolved(&earlier);
        let u = earlier.union(&next);
        assert!(!u.endpoints.contains_key(B));
        assert!(!u.resolved_endpoints.contains_key(B));
        assert!(u.resolved_endpoints.contains_key(C));
    }

    #[test]
    fn a_record_whose_namespace_leaves_run_netns_is_refused() {
        let mut good = applied("b.example:51820");
        good.socket_namespace = Netns::Named("ns-a".into());
        good.interface_namespace = Netns::Init;
        parse(ron::ser::to_string(&good).unwrap().as_bytes()).unwrap();
        for bad in ["../../dev/null", "/tmp/fifo", "..", ""] {
            let mut rec = applied("b.example:51820");
            rec.interface_namespace = Netns::Named(bad.into());
            let e = parse(ron::ser::to_string(&rec).unwrap().as_bytes()).unwrap_err();
            assert_eq!(
                e,
                format!("is not one wg-exec wrote: interface_namespace: {bad:?} is not a namespace name")
            );
            let mut rec = applied("b.example:51820");
            rec.socket_namespace = Netns::Named(bad.into());
            let e = parse(ron::ser::to_string(&rec).unwrap().as_bytes()).unwrap_err();
            assert!(e.contains("socket_namespace"), "{e}");
        }
    }
}
