//! An in-memory kernel for tests: it keeps the state the real one would (links, addresses,
//! device keys, peers, routes, files), records every call in order, and can be told to fail its
//! Nth call so that every rollback path runs without root.

use crate::kernel::{
    AllowedIpsChange, Backend, BatchError, DeviceSettings, Endpoint, Kernel, KernelError,
    LinkState, LiveDevice, LivePeer, Netns, NftTable, PeerSettings, PeerUpdate, PolicyRule,
    Resolve, Resolved, Route,
};
use crate::kernel::{DnsBackend, DnsSettings};
use crate::secret::Key;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const ENOENT: i32 = 2;
const EINVAL: i32 = 22;

/// One WireGuard link as the fake kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FakeLink {
    pub mtu: u32,
    pub up: bool,
    pub addrs: BTreeSet<IpNet>,
    pub private_key: Option<Key>,
    pub listen_port: u16,
    pub fwmark: u32,
    pub peers: BTreeMap<Key, PeerSettings>,
    pub userspace: bool,
}

/// Everything the fake kernel holds; compared whole by tests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FakeState {
    /// Named namespaces that exist (the current and the init one always do).
    pub namespaces: BTreeSet<String>,
    pub links: BTreeMap<(Netns, String), FakeLink>,
    pub routes: BTreeSet<(Netns, String, Route)>,
    /// Key files: path → base64 text.
    pub files: BTreeMap<PathBuf, String>,
    /// Routing policy rules.
    pub rules: BTreeSet<(Netns, PolicyRule)>,
    /// Unreachable routes: destination and table.
    pub unreachable: BTreeSet<(Netns, IpNet, u32)>,
    /// nftables tables and the script that made each.
    pub nft: BTreeMap<(Netns, NftTable), String>,
    /// Sysctls that differ from "0".
    pub sysctls: BTreeMap<(Netns, String), String>,
    /// DNS settings by link name, with the backend that holds them. Like a resolvconf entry,
    /// they outlive the link (the fake does not drop them when the link goes).
    pub dns: BTreeMap<String, (DnsBackend, DnsSettings)>,
}

#[derive(Debug, Default)]
pub struct FakeKernel {
    pub state: FakeState,
    /// Every call, in order, as "method ns args…".
    pub calls: Vec<String>,
    /// Calls that fail, by 1-based number (counting every recorded call).
    pub failures: BTreeMap<usize, KernelError>,
    /// In the next `route_replace`, fail the item with this index and apply the others.
    pub fail_batch_item: Option<(usize, KernelError)>,
    /// Host names that do not resolve yet (the answer is "later").
    pub later_hosts: BTreeSet<String>,
    /// Host names `resolve_endpoints` knows.
    pub hosts: BTreeMap<String, IpAddr>,
    /// Whether the kernel has WireGuard (decides `Backend::Auto`).
    pub has_wireguard: bool,
    /// Plays boringtun-cli: `wg_get` says peers cannot be updated in place.
    pub no_update_in_place: bool,
    /// A kernel without IPv6: IPv6 rules and routes fail with EAFNOSUPPORT.
    pub no_ipv6: bool,
    /// The MTU of the route to each address (`route_mtu`); the default route is 0.0.0.0.
    pub path_mtu: BTreeMap<IpAddr, u32>,
    /// The DNS backend the host has (systemd-resolved by default; None: neither).
    pub dns_backend: Option<DnsBackend>,
    /// The age of every peer's last handshake as `wg_get` tells it, in seconds (None: never).
    pub handshake_age: Option<u64>,
    key_counter: u8,
}

fn label(ns: &Netns) -> String {
    match ns {
        Netns::Current => "current".into(),
        Netns::Init => "init".into(),
        Netns::Named(n) => n.clone(),
    }
}

impl FakeKernel {
    pub fn new() -> FakeKernel {
        FakeKernel {
            has_wireguard: true,
            dns_backend: Some(DnsBackend::Resolved),
            ..FakeKernel::default()
        }
    }

    /// Fail call number `n` (1-based, counting from the first call ever made).
    pub fn fail_call(&mut self, n: usize, err: KernelError) {
        self.failures.insert(n, err);
    }

    pub fn add_namespace(&mut self, name: &str) {
        self.state.namespaces.insert(name.to_string());
    }

    /// Puts a key file holding a key made of `byte`.
    pub fn put_key_file(&mut self, path: &str, byte: u8) {
        let key = Key::from_bytes([byte; 32], true);
        self.state.files.insert(path.into(), key.to_base64());
    }

    /// Records a call and decides whether it fails.
    fn call(&mut self, text: String) -> Result<(), KernelError> {
        self.calls.push(text);
        match self.failures.get(&self.calls.len()) {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    fn check_ns(&self, ns: &Netns) -> Result<(), KernelError> {
        match ns {
            Netns::Named(n) if !self.state.namespaces.contains(n) => {
                Err(KernelError::from_errno(ENOENT, None))
            }
            _ => Ok(()),
        }
    }

    fn link(&mut self, ns: &Netns, name: &str) -> Result<&mut FakeLink, KernelError> {
        self.check_ns(ns)?;
        self.state
            .links
            .get_mut(&(ns.clone(), name.to_string()))
            .ok_or_else(|| KernelError::from_errno(ENODEV, None))
    }
}

impl Kernel for FakeKernel {
    fn file_exists(&mut self, path: &Path) -> Result<bool, KernelError> {
        self.call(format!("file_exists {}", path.display()))?;
        Ok(self.state.files.contains_key(path))
    }

    fn generate_key_file(&mut self, path: &Path) -> Result<(), KernelError> {
        self.call(format!("generate_key_file {}", path.display()))?;
        if self.state.files.contains_key(path) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        self.key_counter = self.key_counter.wrapping_add(1);
        let key = Key::from_bytes([0xa0 ^ self.key_counter; 32], true);
        self.state.files.insert(path.to_path_buf(), key.to_base64());
        Ok(())
    }

    fn remove_file(&mut self, path: &Path) -> Result<(), KernelError> {
        self.call(format!("remove_file {}", path.display()))?;
        self.state
            .files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| KernelError::from_errno(ENOENT, None))
    }

    fn read_secret_file(&mut self, path: &Path) -> Result<Key, KernelError> {
        self.call(format!("read_secret_file {}", path.display()))?;
        let text = self
            .state
            .files
            .get(path)
            .ok_or_else(|| KernelError::from_errno(ENOENT, None))?;
        Key::from_base64(text, true).map_err(|e| KernelError::new(e.to_string()))
    }

    fn modprobe(&mut self, module: &str) -> Result<(), KernelError> {
        self.call(format!("modprobe {module}"))
    }

    fn run_hook(&mut self, device: &str, script: &str) -> Result<(), KernelError> {
        self.call(format!("run_hook {device} {script:?}"))
    }

    fn link_add(&mut self, ns: &Netns, name: &str, backend: &Backend) -> Result<(), KernelError> {
        let kind = match backend {
            Backend::Kernel => "kernel",
            Backend::Userspace { .. } => "userspace",
            Backend::Auto { .. } => "auto",
        };
        self.call(format!("link_add {} {name} {kind}", label(ns)))?;
        self.check_ns(ns)?;
        let userspace = match backend {
            Backend::Kernel if !self.has_wireguard => {
                return Err(KernelError::from_errno(95, Some("Unknown device type")))
            }
            Backend::Kernel => false,
            Backend::Userspace { .. } => true,
            Backend::Auto { .. } => !self.has_wireguard,
        };
        let key = (ns.clone(), name.to_string());
        if self.state.links.contains_key(&key) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        let link = FakeLink {
            mtu: 1420,
            up: false,
            addrs: BTreeSet::new(),
            private_key: None,
            listen_port: 0,
            fwmark: 0,
            peers: BTreeMap::new(),
            userspace,
        };
        self.state.links.insert(key, link);
        Ok(())
    }

    fn link_del(&mut self, ns: &Netns, name: &str) -> Result<(), KernelError> {
        self.call(format!("link_del {} {name}", label(ns)))?;
        self.link(ns, name)?;
        self.state.links.remove(&(ns.clone(), name.to_string()));
        self.state
            .routes
            .retain(|(rns, dev, _)| !(rns == ns && dev == name));
        Ok(())
    }

    fn link_exists(&mut self, ns: &Netns, name: &str) -> Result<bool, KernelError> {
        self.call(format!("link_exists {} {name}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self
            .state
            .links
            .contains_key(&(ns.clone(), name.to_string())))
    }

    fn link_index(&mut self, ns: &Netns, name: &str) -> Result<u32, KernelError> {
        self.call(format!("link_index {} {name}", label(ns)))?;
        self.link(ns, name)?;
        Ok(7)
    }

    fn userspace_pids(&mut self, _name: &str) -> Vec<i32> {
        Vec::new()
    }

    fn link_set_netns(&mut self, ns: &Netns, name: &str, to: &Netns) -> Result<(), KernelError> {
        self.call(format!("link_set_netns {} {name} {}", label(ns), label(to)))?;
        self.check_ns(to)?;
        let mut link = self.link(ns, name)?.clone();
        let target = (to.clone(), name.to_string());
        if self.state.links.contains_key(&target) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        // As in Linux: a link that changes namespace loses its addresses and routes.
        link.addrs.clear();
        self.state.links.remove(&(ns.clone(), name.to_string()));
        self.state
            .routes
            .retain(|(rns, dev, _)| !(rns == ns && dev == name));
        self.state.links.insert(target, link);
        Ok(())
    }

    fn link_mtu(&mut self, ns: &Netns, name: &str) -> Result<u32, KernelError> {
        self.call(format!("link_mtu {} {name}", label(ns)))?;
        Ok(self.link(ns, name)?.mtu)
    }

    fn link_set_mtu(&mut self, ns: &Netns, name: &str, mtu: u32) -> Result<(), KernelError> {
        self.call(format!("link_set_mtu {} {name} {mtu}", label(ns)))?;
        self.link(ns, name)?.mtu = mtu;
        Ok(())
    }

    fn link_set_up(&mut self, ns: &Netns, name: &str, up: bool) -> Result<(), KernelError> {
        let word = if up { "up" } else { "down" };
        self.call(format!("link_set_up {} {name} {word}", label(ns)))?;
        self.link(ns, name)?.up = up;
        Ok(())
    }

    fn addr_add(&mut self, ns: &Netns, name: &str, addr: &IpNet) -> Result<(), KernelError> {
        self.call(format!("addr_add {} {name} {addr}", label(ns)))?;
        if !self.link(ns, name)?.addrs.insert(*addr) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        Ok(())
    }

    fn addr_del(&mut self, ns: &Netns, name: &str, addr: &IpNet) -> Result<(), KernelError> {
        self.call(format!("addr_del {} {name} {addr}", label(ns)))?;
        if !self.link(ns, name)?.addrs.remove(addr) {
            return Err(KernelError::from_errno(99, None));
        }
        Ok(())
    }

    fn wg_set_device(
        &mut self,
        ns: &Netns,
        name: &str,
        settings: &DeviceSettings,
    ) -> Result<(), KernelError> {
        self.call(format!(
            "wg_set_device {} {name} key={} port={:?} fwmark={:?}",
            label(ns),
            settings
                .private_key
                .as_ref()
                .map(|_| "set")
                .unwrap_or("none"),
            settings.listen_port,
            settings.fwmark
        ))?;
        let link = self.link(ns, name)?;
        if let Some(k) = &settings.private_key {
            link.private_key = Some(k.clone());
        }
        if let Some(p) = settings.listen_port {
            link.listen_port = p;
        }
        if let Some(m) = settings.fwmark {
            link.fwmark = m;
        }
        Ok(())
    }

    fn wg_clear_device(&mut self, ns: &Netns, name: &str) -> Result<(), KernelError> {
        self.call(format!("wg_clear_device {} {name}", label(ns)))?;
        let link = self.link(ns, name)?;
        link.private_key = None;
        link.listen_port = 0;
        link.fwmark = 0;
        Ok(())
    }

    fn wg_set_peers(
        &mut self,
        ns: &Netns,
        name: &str,
        peers: &[PeerSettings],
    ) -> Result<(), KernelError> {
        self.call(format!("wg_set_peers {} {name} {}", label(ns), peers.len()))?;
        let link = self.link(ns, name)?;
        for p in peers {
            let mut p = p.clone();
            p.allowed_ips.sort();
            p.allowed_ips.dedup();
            claim(&mut link.peers, &p.public_key, &p.allowed_ips);
            link.peers.insert(p.public_key.clone(), p);
        }
        Ok(())
    }

    fn wg_remove_peers(&mut self, ns: &Netns, name: &str, keys: &[Key]) -> Result<(), KernelError> {
        self.call(format!(
            "wg_remove_peers {} {name} {}",
            label(ns),
            keys.len()
        ))?;
        let link = self.link(ns, name)?;
        for k in keys {
            link.peers.remove(k);
        }
        Ok(())
    }

    fn wg_update_peers(
        &mut self,
        ns: &Netns,
        name: &str,
        updates: &[PeerUpdate],
    ) -> Result<(), KernelError> {
        self.call(format!(
            "wg_update_peers {} {name} {}",
            label(ns),
            updates.len()
        ))?;
        let link = self.link(ns, name)?;
        for u in updates {
            let claimed: Vec<IpNet> = match &u.allowed_ips {
                AllowedIpsChange::Unchanged => Vec::new(),
                AllowedIpsChange::Append(new) => new.clone(),
                AllowedIpsChange::Replace => u.peer.allowed_ips.clone(),
            };
            // UPDATE_ONLY: a peer that is not there is not created.
            let Some(p) = link.peers.get_mut(&u.peer.public_key) else {
                continue;
            };
            if u.preshared_key {
                p.preshared_key = u.peer.preshared_key.clone();
            }
            if u.endpoint {
                p.endpoint = u.peer.endpoint;
            }
            if u.persistent_keepalive {
                p.persistent_keepalive = u.peer.persistent_keepalive;
            }
            match &u.allowed_ips {
                AllowedIpsChange::Unchanged => {}
                AllowedIpsChange::Append(new) => {
                    for ip in new {
                        if !p.allowed_ips.contains(ip) {
                            p.allowed_ips.push(*ip);
                        }
                    }
                }
                AllowedIpsChange::Replace => p.allowed_ips = u.peer.allowed_ips.clone(),
            }
            // The kernel keeps no order; the fake keeps them sorted so that states compare.
            p.allowed_ips.sort();
            p.allowed_ips.dedup();
            claim(&mut link.peers, &u.peer.public_key, &claimed);
        }
        Ok(())
    }

    fn wg_get(&mut self, ns: &Netns, name: &str) -> Result<LiveDevice, KernelError> {
        self.call(format!("wg_get {} {name}", label(ns)))?;
        let in_place = !self.no_update_in_place;
        let handshake_age = self.handshake_age;
        let link = self.link(ns, name)?;
        Ok(LiveDevice {
            private_key: link.private_key.clone(),
            public_key: None,
            listen_port: link.listen_port,
            fwmark: link.fwmark,
            peers: link
                .peers
                .values()
                .map(|p| LivePeer {
                    public_key: p.public_key.clone(),
                    preshared_key: p.preshared_key.clone(),
                    endpoint: p.endpoint,
                    persistent_keepalive: p.persistent_keepalive.unwrap_or(0),
                    allowed_ips: p.allowed_ips.clone(),
                    handshake_age,
                    rx_bytes: 0,
                    tx_bytes: 0,
                })
                .collect(),
            updates_in_place: in_place,
        })
    }

    fn link_state(&mut self, ns: &Netns, name: &str) -> Result<Option<LinkState>, KernelError> {
        self.call(format!("link_state {} {name}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self
            .state
            .links
            .get(&(ns.clone(), name.to_string()))
            .map(|l| LinkState {
                index: 7,
                mtu: l.mtu,
                up: l.up,
            }))
    }

    fn addr_list(&mut self, ns: &Netns, name: &str) -> Result<Vec<IpNet>, KernelError> {
        self.call(format!("addr_list {} {name}", label(ns)))?;
        Ok(self.link(ns, name)?.addrs.iter().copied().collect())
    }

    fn route_list(&mut self, ns: &Netns, name: &str) -> Result<Vec<Route>, KernelError> {
        self.call(format!("route_list {} {name}", label(ns)))?;
        self.link(ns, name)?;
        Ok(self
            .state
            .routes
            .iter()
            .filter(|(n, d, _)| n == ns && d == name)
            .map(|(_, _, r)| r.clone())
            .collect())
    }

    fn resolve_endpoints(
        &mut self,
        ns: &Netns,
        endpoints: &[Endpoint],
        _how: Resolve,
    ) -> Vec<Resolved> {
        let list: Vec<String> = endpoints.iter().map(|e| e.to_string()).collect();
        if let Err(e) = self.call(format!(
            "resolve_endpoints {} {}",
            label(ns),
            list.join(" ")
        )) {
            return endpoints
                .iter()
                .map(|_| Resolved::Failed(e.clone()))
                .collect();
        }
        if let Err(e) = self.check_ns(ns) {
            return endpoints
                .iter()
                .map(|_| Resolved::Failed(e.clone()))
                .collect();
        }
        endpoints
            .iter()
            .map(|ep| match ep.host.parse::<IpAddr>() {
                Ok(ip) => Resolved::Addrs(vec![SocketAddr::new(ip, ep.port)]),
                Err(_) => match self.hosts.get(&ep.host) {
                    Some(ip) => Resolved::Addrs(vec![SocketAddr::new(*ip, ep.port)]),
                    None if self.later_hosts.contains(&ep.host) => {
                        Resolved::Later("Temporary failure in name resolution".into())
                    }
                    None => Resolved::Failed(KernelError::new("Name or service not known")),
                },
            })
            .collect()
    }

    fn route_replace(&mut self, ns: &Netns, dev: &str, routes: &[Route]) -> Result<(), BatchError> {
        let whole = |e: KernelError| BatchError {
            failed: (0..routes.len()).map(|i| (i, e.clone())).collect(),
        };
        self.call(format!(
            "route_replace {} {dev} {}",
            label(ns),
            routes.len()
        ))
        .map_err(whole)?;
        self.link(ns, dev).map_err(whole)?;
        let mut failed = Vec::new();
        let fail_item = self.fail_batch_item.take();
        for (i, r) in routes.iter().enumerate() {
            match &fail_item {
                Some((n, e)) if *n == i => failed.push((i, e.clone())),
                _ => {
                    // `replace`: one route per (table, destination, metric).
                    self.state
                        .routes
                        .retain(|(rns, _, x)| !(rns == ns && x == r));
                    self.state
                        .routes
                        .insert((ns.clone(), dev.to_string(), r.clone()));
                }
            }
        }
        match failed.is_empty() {
            true => Ok(()),
            false => Err(BatchError { failed }),
        }
    }

    fn route_del(&mut self, ns: &Netns, dev: &str, routes: &[Route]) -> Result<(), BatchError> {
        let whole = |e: KernelError| BatchError {
            failed: (0..routes.len()).map(|i| (i, e.clone())).collect(),
        };
        self.call(format!("route_del {} {dev} {}", label(ns), routes.len()))
            .map_err(whole)?;
        self.check_ns(ns).map_err(whole)?;
        for r in routes {
            self.state
                .routes
                .remove(&(ns.clone(), dev.to_string(), r.clone()));
        }
        Ok(())
    }

    fn rule_list(&mut self, ns: &Netns) -> Result<Vec<PolicyRule>, KernelError> {
        self.call(format!("rule_list {}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self
            .state
            .rules
            .iter()
            .filter(|(n, _)| n == ns)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn rule_add(&mut self, ns: &Netns, rule: &PolicyRule) -> Result<(), KernelError> {
        self.call(format!("rule_add {} {rule}", label(ns)))?;
        self.check_ns(ns)?;
        if rule.v6 && self.no_ipv6 {
            return Err(KernelError::from_errno(97, None));
        }
        if !self.state.rules.insert((ns.clone(), rule.clone())) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        Ok(())
    }

    fn rule_del(&mut self, ns: &Netns, rule: &PolicyRule) -> Result<(), KernelError> {
        self.call(format!("rule_del {} {rule}", label(ns)))?;
        self.check_ns(ns)?;
        if rule.v6 && self.no_ipv6 {
            return Err(KernelError::from_errno(97, None));
        }
        // As the kernel: the fields the request gives, but not the invert flag (rule_find).
        let found = self
            .state
            .rules
            .iter()
            .find(|(n, r)| {
                n == ns
                    && r.v6 == rule.v6
                    && r.priority == rule.priority
                    && r.table == rule.table
                    && r.fwmark == rule.fwmark
                    && r.suppress_prefixlength == rule.suppress_prefixlength
            })
            .cloned();
        match found {
            Some(key) => {
                self.state.rules.remove(&key);
            }
            None => return Err(KernelError::from_errno(ENOENT, None)),
        }
        Ok(())
    }

    fn tables_in_use(&mut self, ns: &Netns) -> Result<BTreeSet<u32>, KernelError> {
        self.call(format!("tables_in_use {}", label(ns)))?;
        self.check_ns(ns)?;
        let mut out: BTreeSet<u32> = [254, 255].into();
        out.extend(
            self.state
                .routes
                .iter()
                .filter(|(n, _, _)| n == ns)
                .map(|(_, _, r)| r.table),
        );
        out.extend(
            self.state
                .unreachable
                .iter()
                .filter(|(n, _, _)| n == ns)
                .map(|(_, _, t)| *t),
        );
        for (n, r) in &self.state.rules {
            if n == ns {
                out.insert(r.table);
                out.extend(r.fwmark);
            }
        }
        Ok(out)
    }

    fn route_unreachable(
        &mut self,
        ns: &Netns,
        dst: &IpNet,
        table: u32,
        add: bool,
    ) -> Result<(), KernelError> {
        let verb = if add { "add" } else { "del" };
        self.call(format!(
            "route_unreachable {} {verb} {dst} {table}",
            label(ns)
        ))?;
        self.check_ns(ns)?;
        if matches!(dst, IpNet::V6(_)) && self.no_ipv6 {
            return Err(KernelError::from_errno(97, None));
        }
        let key = (ns.clone(), *dst, table);
        if add && !self.state.unreachable.insert(key.clone()) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        if !add && !self.state.unreachable.remove(&key) {
            return Err(KernelError::from_errno(3, None));
        }
        Ok(())
    }

    fn table_routes(&mut self, ns: &Netns, table: u32) -> Result<Vec<(IpNet, bool)>, KernelError> {
        self.call(format!("table_routes {} {table}", label(ns)))?;
        self.check_ns(ns)?;
        let mut out: Vec<(IpNet, bool)> = self
            .state
            .routes
            .iter()
            .filter(|(n, _, r)| n == ns && r.table == table)
            .map(|(_, _, r)| (r.dst, false))
            .collect();
        out.extend(
            self.state
                .unreachable
                .iter()
                .filter(|(n, _, t)| n == ns && *t == table)
                .map(|(_, d, _)| (*d, true)),
        );
        Ok(out)
    }

    fn nft_apply(&mut self, ns: &Netns, script: &str) -> Result<(), KernelError> {
        let first = script.lines().next().unwrap_or("");
        self.call(format!("nft_apply {} {first}", label(ns)))?;
        self.check_ns(ns)?;
        let words: Vec<&str> = first.split_whitespace().collect();
        match words.as_slice() {
            ["create", "table", family, name] => {
                let key = (
                    ns.clone(),
                    NftTable {
                        family: family.to_string(),
                        name: name.to_string(),
                    },
                );
                if self.state.nft.contains_key(&key) {
                    return Err(KernelError::from_errno(EEXIST, None));
                }
                self.state.nft.insert(key, script.to_string());
                Ok(())
            }
            ["delete", "table", family, name] => {
                let key = (
                    ns.clone(),
                    NftTable {
                        family: family.to_string(),
                        name: name.to_string(),
                    },
                );
                self.state
                    .nft
                    .remove(&key)
                    .map(drop)
                    .ok_or_else(|| KernelError::from_errno(ENOENT, None))
            }
            _ => Err(einval()),
        }
    }

    fn nft_tables(&mut self, ns: &Netns) -> Result<Vec<NftTable>, KernelError> {
        self.call(format!("nft_tables {}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self
            .state
            .nft
            .keys()
            .filter(|(n, _)| n == ns)
            .map(|(_, t)| t.clone())
            .collect())
    }

    fn sysctl_get(&mut self, ns: &Netns, path: &str) -> Result<String, KernelError> {
        self.call(format!("sysctl_get {} {path}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self
            .state
            .sysctls
            .get(&(ns.clone(), path.to_string()))
            .cloned()
            .unwrap_or_else(|| "0".into()))
    }

    fn sysctl_set(&mut self, ns: &Netns, path: &str, value: &str) -> Result<(), KernelError> {
        self.call(format!("sysctl_set {} {path} {value}", label(ns)))?;
        self.check_ns(ns)?;
        let key = (ns.clone(), path.to_string());
        match value {
            "0" => self.state.sysctls.remove(&key),
            v => self.state.sysctls.insert(key, v.to_string()),
        };
        Ok(())
    }

    fn route_mtu(&mut self, ns: &Netns, dst: IpAddr) -> Result<Option<u32>, KernelError> {
        self.call(format!("route_mtu {} {dst}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self.path_mtu.get(&dst).copied())
    }
    fn dns_available(&mut self) -> Option<DnsBackend> {
        self.call("dns_available".into()).ok()?;
        self.dns_backend
    }

    fn dns_set(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
        settings: &DnsSettings,
    ) -> Result<(), KernelError> {
        self.call(format!("dns_set {backend} {} {name}", label(ns)))?;
        if backend == DnsBackend::Resolved {
            // resolved knows links by index: the link must exist.
            self.link(ns, name)?;
        }
        self.state
            .dns
            .insert(name.to_string(), (backend, settings.clone()));
        Ok(())
    }

    fn dns_matches(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
        settings: &DnsSettings,
    ) -> Result<Option<bool>, KernelError> {
        self.call(format!("dns_matches {backend} {} {name}", label(ns)))?;
        if backend == DnsBackend::Resolvconf {
            return Ok(None);
        }
        Ok(Some(
            self.state.dns.get(name) == Some(&(backend, settings.clone())),
        ))
    }

    fn dns_revert(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
    ) -> Result<(), KernelError> {
        self.call(format!("dns_revert {backend} {} {name}", label(ns)))?;
        self.state.dns.remove(name);
        Ok(())
    }
}

/// As the kernel does: a prefix claimed by one peer is taken from every other.
fn claim(peers: &mut BTreeMap<Key, PeerSettings>, owner: &Key, prefixes: &[IpNet]) {
    if prefixes.is_empty() {
        return;
    }
    for (k, p) in peers.iter_mut() {
        if k != owner {
            p.allowed_ips.retain(|ip| !prefixes.contains(ip));
        }
    }
}

/// The kernel's "Invalid argument", for tests that need some failure.
pub fn einval() -> KernelError {
    KernelError::from_errno(EINVAL, None)
}
