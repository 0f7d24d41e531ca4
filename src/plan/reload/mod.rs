//! The plan of a reload: what differs between the configuration and the live interface (read
//! back) and what up recorded (the applied record), as steps that change only that, each with
//! its undo, in the order that leaves no gap:
//!
//!  1. listen port and fwmark (the risky ones first: a port may be taken),
//!  2. a larger MTU, 3. IPv6 addresses that change only their prefix length go, new addresses,
//!  4. new peers, 5. peers that only gain or change attributes, 6. new routes,
//!  7. peers that lose allowed IPs, 8. peers that go, 9. routes that go, 10. addresses that go,
//!     and a smaller MTU,
//! 11. the private key, last (it ends every session).
//!
//! [`plan`] computes the diffs once ([`Reload`]), then asks one function per position for its
//! step. The diff walks only what can differ: an unchanged peer costs a lookup and a few
//! comparisons, no allocation; routes and peers that may have to go are looked for only when
//! the live interface has more than the configuration.
//!
//! A prefix moving from one peer to another is claimed by its new owner (the kernel moves it)
//! before the old owner's list is replaced, so it is never unrouted. An unchanged peer is not
//! touched at all; an unchanged endpoint is never sent (that would undo roaming).

use super::Plan;
use crate::config::derived::{self, interface_ns, socket_ns};
use crate::config::Config;
use crate::journal::applied::{Applied, PublicKey};
use ipnet::IpNet;
use live::readdressed_v6;
use std::collections::{BTreeSet, HashSet};
use wg_exec_steps::step::Needs;
use wg_exec_steps::Addresses;
use wg_exec_steps::AddressesRemove;
use wg_exec_steps::DeviceSet;
use wg_exec_steps::KeyRotate;
use wg_exec_steps::Mtu;
use wg_exec_steps::Routes;
use wg_exec_steps::RoutesRemove;
use wg_exec_steps::{
    Endpoint, Kernel, KernelError, Key, LiveDevice, Netns, Route, SecretSource, Step,
};

mod live;
mod peers;

pub use live::{not_live, not_live_addresses, read_live, Live};

/// What a reload of `cfg` may need from the process, from the steps it can make: reading the
/// live device, and every step of a reload ([`plan`]), act in the interface's namespace; a new
/// or changed endpoint that is a host name is resolved in the socket namespace (the peer steps
/// say so in their `needs`). No module, no hooks, no port to bind: the device exists.
pub fn needs(cfg: &Config) -> Needs {
    let resolves = cfg
        .peers
        .iter()
        .filter_map(|p| p.endpoint.as_ref())
        .any(|ep| ep.host.parse::<std::net::IpAddr>().is_err());
    let iface = interface_ns(cfg);
    let sock = socket_ns(cfg);
    Needs::namespaces(std::iter::once(&iface).chain(resolves.then_some(&sock)))
}

/// A reload's plan and what it says besides (warnings, changes that take effect elsewhere).
pub struct ReloadPlan {
    pub steps: Plan,
    pub notes: Vec<String>,
}

// What the record of what was applied says, read here only (its field types are the record's
// to change).

/// The addresses wg-exec added.
fn recorded_addresses(recorded: &Applied) -> BTreeSet<IpNet> {
    recorded.addresses.iter().copied().collect()
}

/// The endpoint a peer was configured with, as recorded.
fn recorded_endpoint<'r>(recorded: &'r Applied, key: &Key) -> Option<&'r Endpoint> {
    match recorded.endpoints.is_empty() {
        true => None,
        false => recorded.endpoints.get(&PublicKey::of(key)),
    }
}

/// Whether a peer was in a configuration wg-exec applied.
fn recorded_peer(recorded: &Applied, key: &Key) -> bool {
    recorded.names.contains_key(&PublicKey::of(key))
}

/// The routes wg-exec added.
fn recorded_routes(recorded: &Applied) -> HashSet<Route> {
    recorded.route_list().into_iter().collect()
}

/// The device's public key as it is: from the private key it reports, else its own report.
fn live_public(dev: &LiveDevice) -> Option<Key> {
    match &dev.private_key {
        Some(k) => Some(crate::keys::public_of(k)),
        None => dev.public_key.clone(),
    }
}

/// The addresses' diff.
struct AddressDiff {
    /// 3. IPv6 addresses that only change their prefix length: the same address to the kernel.
    early_drop: Vec<IpNet>,
    /// 3. New ones.
    add: Vec<IpNet>,
    /// 10. Ours that go.
    drop: Vec<IpNet>,
}

/// The routes' diff: (table, destination, metric) is a route's identity.
struct RouteDiff {
    /// 6. Missing ones.
    add: Vec<Route>,
    /// 9. Ours that go.
    drop: Vec<Route>,
}

/// What a reload plan reads, and the notes it gathers while it compares.
struct Reload<'a> {
    cfg: &'a Config,
    recorded: &'a Applied,
    live: &'a Live,
    name: String,
    ns: Netns,
    sock: Netns,
    notes: Vec<String>,
}

/// The steps that make the live interface what `cfg` says, in the order of the list at the top
/// of this file. Secrets (preshared and private keys) are read through `kernel`; nothing is
/// sent to the device.
pub fn plan(
    cfg: &Config,
    recorded: &Applied,
    live: &Live,
    kernel: &mut dyn Kernel,
) -> Result<ReloadPlan, KernelError> {
    let mut r = Reload {
        cfg,
        recorded,
        live,
        name: cfg.name.clone(),
        ns: interface_ns(cfg),
        sock: socket_ns(cfg),
        notes: Vec::new(),
    };
    // The diffs, in the order their notes are said and their secrets read.
    let (port, mark) = r.device();
    let (mtu_up, mtu_down) = r.mtu();
    let addrs = r.addresses();
    let peers = r.peers(kernel)?;
    let routes = r.routes();
    let key = r.private_key(kernel)?;

    let mut steps: Plan = Vec::new();
    steps.extend(r.device_set(port, mark)); // 1.
    steps.extend(mtu_up.map(|m| r.mtu_step(m))); // 2.
    steps.extend(r.addresses_remove(addrs.early_drop)); // 3.
    steps.extend(r.addresses_add(addrs.add)); // 3.
    steps.extend(r.new_peers(peers.new)); // 4.
    steps.extend(r.updates(peers.gaining, "changed")); // 5.
    steps.extend(r.routes_add(routes.add)); // 6.
    steps.extend(r.updates(peers.losing, "losing")); // 7.
    steps.extend(r.peers_remove(peers.gone)); // 8.
    steps.extend(r.routes_remove(routes.drop)); // 9.
    steps.extend(r.addresses_remove(addrs.drop)); // 10.
    steps.extend(mtu_down.map(|m| r.mtu_step(m))); // 10.
    steps.extend(key); // 11.
    Ok(ReloadPlan {
        steps,
        notes: r.notes,
    })
}

type Change<T> = Option<(T, T)>;

impl Reload<'_> {
    /// The listen port and fwmark that change (from, to): only when configured and different
    /// from the device's.
    fn device(&mut self) -> (Change<u16>, Change<u32>) {
        let (cfg, recorded, dev) = (self.cfg, self.recorded, &self.live.device);
        let port = cfg
            .listen_port
            .filter(|p| *p != 0 && *p != dev.listen_port)
            .map(|p| (dev.listen_port, p));
        // A full tunnel keeps the fwmark up chose (its shape cannot change in a reload).
        let cfg_mark = cfg
            .fwmark
            .filter(|m| *m != 0 || !cfg.full_tunnel())
            .or(recorded.full_tunnel_table.filter(|_| cfg.full_tunnel()));
        let recorded_mark = recorded.fwmark.or(recorded.full_tunnel_table);
        let wanted_mark = match (cfg_mark, recorded_mark) {
            (Some(m), _) => Some(m),
            // Unset now, set by wg-exec before: cleared.
            (None, Some(_)) => Some(0),
            (None, None) => None,
        };
        let mark = wanted_mark
            .filter(|m| *m != dev.fwmark)
            .map(|m| (dev.fwmark, m));
        if cfg.listen_port.is_none() && recorded.listen_port.is_some() {
            self.notes.push(format!(
                "listen_port is no longer set: the device keeps port {} (a port of 0 would rebind to a random one)",
                dev.listen_port
            ));
        }
        (port, mark)
    }

    /// 1. Listen port and fwmark, the risky ones first: a port may be taken.
    fn device_set(&self, port: Change<u16>, mark: Change<u32>) -> Option<Box<dyn Step>> {
        (port.is_some() || mark.is_some()).then(|| {
            Box::new(DeviceSet {
                name: self.name.clone(),
                ns: self.ns.clone(),
                listen_port: port,
                fwmark: mark,
            }) as Box<dyn Step>
        })
    }

    /// The MTU that grows (2.) or shrinks (10.). A smaller one goes after the removals: an
    /// MTU under 1280 takes IPv6 off the link, and with it the addresses a later step would
    /// remove.
    fn mtu(&mut self) -> (Option<u32>, Option<u32>) {
        let now = self.live.link.mtu;
        match self.cfg.mtu {
            Some(m) if m > now => return (Some(m), None),
            Some(m) if m < now => return (None, Some(m)),
            None if self.recorded.mtu.is_some() && self.cfg.auto_mtu => self.notes.push(format!(
                "mtu is \"auto\" now: it is chosen at up (from the routes to the endpoints); the link keeps MTU {now} until then"
            )),
            None if self.recorded.mtu.is_some() => self
                .notes
                .push(format!("mtu is no longer set: the link keeps MTU {now}")),
            _ => {}
        }
        (None, None)
    }

    /// 2. and 10. The MTU.
    fn mtu_step(&self, mtu: u32) -> Box<dyn Step> {
        Box::new(Mtu::new(self.name.clone(), self.ns.clone(), mtu))
    }

    /// Addresses: new ones early, ours that went at the end.
    fn addresses(&self) -> AddressDiff {
        let have: BTreeSet<IpNet> = self.live.addrs.iter().copied().collect();
        let want = &self.cfg.ips;
        let add: Vec<IpNet> = want.iter().filter(|a| !have.contains(a)).copied().collect();
        let ours = recorded_addresses(self.recorded);
        let (early_drop, drop): (Vec<IpNet>, Vec<IpNet>) = have
            .iter()
            .filter(|a| ours.contains(a) && !want.contains(a))
            .copied()
            .partition(|a| readdressed_v6(a, &add));
        AddressDiff {
            early_drop,
            add,
            drop,
        }
    }

    /// 3. New addresses, while the old ones are still there.
    fn addresses_add(&self, add: Vec<IpNet>) -> Option<Box<dyn Step>> {
        (!add.is_empty())
            .then(|| Box::new(Addresses::new(self.name.clone(), self.ns.clone(), add)) as _)
    }

    /// 3. (an IPv6 address that comes back with another prefix length goes first) and 10.
    fn addresses_remove(&self, drop: Vec<IpNet>) -> Option<Box<dyn Step>> {
        (!drop.is_empty()).then(|| {
            Box::new(AddressesRemove::new(
                self.name.clone(),
                self.ns.clone(),
                drop,
            )) as _
        })
    }

    /// The routes' diff: missing ones come (a route deleted by hand too); ours that the
    /// configuration no longer has go. The record's routes are read only when the link has
    /// routes the configuration does not.
    fn routes(&self) -> RouteDiff {
        let want = derived::routes(self.cfg);
        let have: HashSet<&Route> = self.live.routes.iter().collect();
        let add: Vec<Route> = want.iter().filter(|r| !have.contains(r)).cloned().collect();
        let mut drop = Vec::new();
        if self.live.routes.len() + add.len() > want.len() {
            let wanted: HashSet<&Route> = want.iter().collect();
            let extra: BTreeSet<&Route> = self
                .live
                .routes
                .iter()
                .filter(|r| !wanted.contains(r))
                .collect();
            if !extra.is_empty() {
                let ours = recorded_routes(self.recorded);
                drop = extra
                    .into_iter()
                    .filter(|r| ours.contains(r))
                    .cloned()
                    .collect();
            }
        }
        RouteDiff { add, drop }
    }

    /// 6. New routes, once the peers that carry them exist.
    fn routes_add(&self, add: Vec<Route>) -> Option<Box<dyn Step>> {
        (!add.is_empty()).then(|| {
            Box::new(Routes::new(
                self.name.clone(),
                self.ns.clone(),
                add,
                self.cfg.table.label.clone(),
            )) as _
        })
    }

    /// 9. Routes that go, once no peer needs them.
    fn routes_remove(&self, drop: Vec<Route>) -> Option<Box<dyn Step>> {
        (!drop.is_empty())
            .then(|| Box::new(RoutesRemove::new(self.name.clone(), self.ns.clone(), drop)) as _)
    }

    /// 11. The private key, last: it ends every session.
    fn private_key(
        &mut self,
        kernel: &mut dyn Kernel,
    ) -> Result<Option<Box<dyn Step>>, KernelError> {
        let cfg = self.cfg;
        let desired = cfg.private_key.load(kernel).map_err(|mut e| {
            e.message = format!(
                "read private key {}: {}",
                cfg.private_key.printable(),
                e.message
            );
            e
        })?;
        let desired_public = crate::keys::public_of(&desired);
        if live_public(&self.live.device).as_ref() == Some(&desired_public) {
            return Ok(None);
        }
        self.notes.push(format!(
            "the private key changes (public key now {desired_public}): every peer's current session ends, and each peer must already know the new public key"
        ));
        Ok(Some(Box::new(KeyRotate {
            name: self.name.clone(),
            ns: self.ns.clone(),
            new: match &cfg.private_key {
                SecretSource::File(p) => SecretSource::File(p.clone()),
                SecretSource::Inline(k) => SecretSource::Inline(k.clone()),
            },
            old: self.live.device.private_key.clone(),
        })))
    }
}
