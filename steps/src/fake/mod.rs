//! An in-memory kernel for tests: it keeps the state the real one would (links, addresses,
//! device keys, peers, routes, files), records every call in order, and can be told to fail its
//! Nth call so that every rollback path runs without root.

mod addresses;
mod dns;
mod files;
mod hooks;
mod links;
mod modules;
mod nftables;
mod resolver;
mod routes;
mod rules;
mod sysctl;
mod wireguard;

use crate::kernel::{DnsBackend, DnsSettings};
use crate::kernel::{KernelError, Netns, NftTable, PeerSettings, PolicyRule, Route};
use crate::secret::Key;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

pub(crate) const EEXIST: i32 = 17;
pub(crate) const ENODEV: i32 = 19;
pub(crate) const ENOENT: i32 = 2;
pub(crate) const EINVAL: i32 = 22;

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

pub(crate) fn label(ns: &Netns) -> String {
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

/// The kernel's "Invalid argument", for tests that need some failure.
pub fn einval() -> KernelError {
    KernelError::from_errno(EINVAL, None)
}
