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
//! A prefix moving from one peer to another is claimed by its new owner (the kernel moves it)
//! before the old owner's list is replaced, so it is never unrouted. An unchanged peer is not
//! touched at all; an unchanged endpoint is never sent (that would undo roaming).

use crate::config::derived::{self, interface_ns, socket_ns};
use crate::config::Config;
use crate::journal::applied::{backend_name, Applied, PublicKey};
use crate::plan::{peer_plan, Plan};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use wg_exec_steps::addresses::Addresses;
use wg_exec_steps::addresses_remove::AddressesRemove;
use wg_exec_steps::device_set::DeviceSet;
use wg_exec_steps::key_rotate::KeyRotate;
use wg_exec_steps::mtu::Mtu;
use wg_exec_steps::peer_remove::PeerRemove;
use wg_exec_steps::peer_set::PeerSet;
use wg_exec_steps::peer_update::{PeerUpdates, PlannedUpdate};
use wg_exec_steps::route::Routes;
use wg_exec_steps::routes_remove::RoutesRemove;
use wg_exec_steps::{
    AllowedIpsChange, Kernel, KernelError, Key, LinkState, LiveDevice, PeerSettings, PeerUpdate,
    Route, SecretSource,
};

/// The interface as it is now.
#[derive(Debug, Clone)]
pub struct Live {
    pub device: LiveDevice,
    pub link: LinkState,
    pub addrs: Vec<IpNet>,
    pub routes: Vec<Route>,
}

/// Reads the live interface where the configuration (and the record) put it.
pub fn read_live(
    kernel: &mut dyn Kernel,
    cfg_ns: &wg_exec_steps::Netns,
    name: &str,
) -> Result<Option<Live>, KernelError> {
    let Some(link) = kernel.link_state(cfg_ns, name)? else {
        return Ok(None);
    };
    Ok(Some(Live {
        device: kernel.wg_get(cfg_ns, name)?,
        link,
        addrs: kernel.addr_list(cfg_ns, name)?,
        routes: kernel.route_list(cfg_ns, name)?,
    }))
}

/// The options that cannot change on a live interface, each with how it changed.
pub fn not_live(cfg: &Config, recorded: &Applied) -> Vec<String> {
    let mut out = Vec::new();
    let shown = |n: &wg_exec_steps::Netns| {
        Option::<String>::from(n.clone()).unwrap_or_else(|| "none".into())
    };
    let socket = crate::config::derived::socket_ns(cfg);
    if socket != recorded.socket_namespace {
        out.push(format!(
            "socket_namespace ({} -> {})",
            shown(&recorded.socket_namespace),
            shown(&socket)
        ));
    }
    let iface = interface_ns(cfg);
    if iface != recorded.interface_namespace {
        out.push(format!(
            "interface_namespace ({} -> {})",
            shown(&recorded.interface_namespace),
            shown(&iface)
        ));
    }
    let shape = crate::journal::applied::FullTunnelShape::of(cfg);
    if shape != recorded.full_tunnel {
        let shown = |s: &Option<crate::journal::applied::FullTunnelShape>| {
            s.as_ref()
                .map_or_else(|| "no full tunnel".into(), |s| s.to_string())
        };
        out.push(format!(
            "the full tunnel ({} -> {})",
            shown(&recorded.full_tunnel),
            shown(&shape)
        ));
    }
    // DNS settings are set once, by up (a reload that changed them would have to undo and
    // redo them through the backend; down and up do).
    let dns = crate::journal::applied::Dns::of(&cfg.dns);
    if dns != recorded.dns {
        out.push(format!(
            "dns ([{}] -> [{}])",
            recorded.dns.entries().join(", "),
            dns.entries().join(", ")
        ));
    }
    let (backend, implementation) = backend_name(&cfg.backend);
    let (was, was_implementation) = backend_name(&recorded.backend);
    if backend != was {
        out.push(format!("backend ({was} -> {backend})"));
    } else if implementation != was_implementation {
        out.push(format!(
            "userspace_implementation ({was_implementation} -> {implementation})"
        ));
    }
    out
}

/// Whether `a` is an IPv6 address that `add` brings back with another prefix length.
fn readdressed_v6(a: &IpNet, add: &[IpNet]) -> bool {
    matches!(a, IpNet::V6(_)) && add.iter().any(|n| n.addr() == a.addr())
}

/// The addresses wg-exec added that go, and that cannot go on a live interface: an IPv4
/// address sharing its subnet with one that stays or comes. The kernel takes the subnet's
/// secondaries with its primary (net.ipv4.conf.*.promote_secondaries is 0 by default) and,
/// when no IPv4 address is left, every IPv4 route through the link: no order of adds and
/// deletes keeps the interface whole, so reload refuses before changing anything.
pub fn not_live_addresses(cfg: &Config, recorded: &Applied, live: &Live) -> Vec<String> {
    let ours: BTreeSet<IpNet> = recorded.addresses.iter().copied().collect();
    let going: Vec<&IpNet> = live
        .addrs
        .iter()
        .filter(|a| ours.contains(a) && !cfg.ips.contains(a))
        .collect();
    let staying: Vec<&IpNet> = live
        .addrs
        .iter()
        .filter(|a| !going.contains(a))
        .chain(cfg.ips.iter())
        .collect();
    let mut out = Vec::new();
    let v4 = |a: &&IpNet| matches!(a, IpNet::V4(_));
    if going.iter().any(v4)
        && !staying.iter().any(v4)
        && derived::routes(cfg)
            .iter()
            .any(|r| matches!(r.dst, IpNet::V4(_)))
    {
        out.push("ips: the last IPv4 address goes while IPv4 routes stay".to_string());
    }
    for s in staying {
        for g in &going {
            let (IpNet::V4(g4), IpNet::V4(s4)) = (g, s) else {
                continue;
            };
            if g4.prefix_len() == s4.prefix_len() && g4.network() == s4.network() {
                let text = format!("ips: {g} goes while {s} stays in its subnet");
                if !out.contains(&text) {
                    out.push(text);
                }
            }
        }
    }
    out
}

/// A reload's plan and what it says besides (warnings, changes that take effect elsewhere).
pub struct ReloadPlan {
    pub steps: Plan,
    pub notes: Vec<String>,
}

/// The device's public key as it is: from the private key it reports, else its own report.
fn live_public(dev: &LiveDevice) -> Option<Key> {
    match &dev.private_key {
        Some(k) => Some(crate::keys::public_of(k)),
        None => dev.public_key.clone(),
    }
}

/// The prefixes updated peers get that they did not have (from others, or new).
fn claims(updates: &[PlannedUpdate]) -> Vec<(Key, IpNet)> {
    updates
        .iter()
        .flat_map(|u| {
            let old: BTreeSet<IpNet> = u.old.allowed_ips.iter().map(|n| n.trunc()).collect();
            u.desired
                .allowed_ips
                .iter()
                .filter(move |n| !old.contains(&n.trunc()))
                .map(|ip| (u.desired.public_key.clone(), *ip))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// For prefixes that peers claim, the updates that give them back to the peers that own them
/// now (the kernel moves a claimed prefix to its claimer, so undoing the claim alone would leave
/// it unowned). Each owner is sent whole, as it is, so that an implementation that cannot
/// update in place re-adds it as it was.
fn give_back(dev: &LiveDevice, claimed: &[(Key, IpNet)]) -> Vec<PeerUpdate> {
    let mut out = Vec::new();
    for owner in &dev.peers {
        let taken: Vec<IpNet> = claimed
            .iter()
            .filter(|(by, ip)| *by != owner.public_key && owner.allowed_ips.contains(&ip.trunc()))
            .map(|(_, ip)| ip.trunc())
            .collect();
        if taken.is_empty() {
            continue;
        }
        out.push(PeerUpdate {
            peer: PeerSettings {
                public_key: owner.public_key.clone(),
                preshared_key: owner.preshared_key.clone(),
                endpoint: owner.endpoint,
                persistent_keepalive: (owner.persistent_keepalive > 0)
                    .then_some(owner.persistent_keepalive),
                allowed_ips: owner.allowed_ips.clone(),
            },
            preshared_key: false,
            endpoint: false,
            persistent_keepalive: false,
            allowed_ips: AllowedIpsChange::Append(taken),
        });
    }
    out
}

pub fn plan(
    cfg: &Config,
    recorded: &Applied,
    live: &Live,
    kernel: &mut dyn Kernel,
) -> Result<ReloadPlan, KernelError> {
    let name = cfg.name.clone();
    let ns = interface_ns(cfg);
    let sock = socket_ns(cfg);
    let mut steps: Plan = Vec::new();
    let mut notes = Vec::new();

    // 1. Listen port and fwmark, only when configured and different from the device's.
    let port = cfg
        .listen_port
        .filter(|p| *p != 0 && *p != live.device.listen_port)
        .map(|p| (live.device.listen_port, p));
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
        .filter(|m| *m != live.device.fwmark)
        .map(|m| (live.device.fwmark, m));
    if cfg.listen_port.is_none() && recorded.listen_port.is_some() {
        notes.push(format!(
            "listen_port is no longer set: the device keeps port {} (a port of 0 would rebind to a random one)",
            live.device.listen_port
        ));
    }
    if port.is_some() || mark.is_some() {
        steps.push(Box::new(DeviceSet {
            name: name.clone(),
            ns: ns.clone(),
            listen_port: port,
            fwmark: mark,
        }));
    }

    // 2. MTU, when it grows. A smaller one goes after the removals: an MTU under 1280 takes
    // IPv6 off the link, and with it the addresses a later step would remove.
    let mut mtu_down = None;
    match cfg.mtu {
        Some(m) if m > live.link.mtu => {
            steps.push(Box::new(Mtu::new(name.clone(), ns.clone(), m)));
        }
        Some(m) if m < live.link.mtu => mtu_down = Some(m),
        None if recorded.mtu.is_some() && cfg.auto_mtu => notes.push(format!(
            "mtu is \"auto\" now: it is chosen at up (from the routes to the endpoints); the link keeps MTU {} until then",
            live.link.mtu
        )),
        None if recorded.mtu.is_some() => notes.push(format!(
            "mtu is no longer set: the link keeps MTU {}",
            live.link.mtu
        )),
        _ => {}
    }

    // 3. Addresses: new ones now, ours that went at the end.
    let have: BTreeSet<IpNet> = live.addrs.iter().copied().collect();
    let want: Vec<IpNet> = cfg.ips.clone();
    let add: Vec<IpNet> = want.iter().filter(|a| !have.contains(a)).copied().collect();
    let ours: BTreeSet<IpNet> = recorded.addresses.iter().copied().collect();
    let (early_drop, drop_addrs): (Vec<IpNet>, Vec<IpNet>) = have
        .iter()
        .filter(|a| ours.contains(a) && !want.contains(a))
        .copied()
        .partition(|a| readdressed_v6(a, &add));
    // An IPv6 address that only changes its prefix length is the same address to the kernel:
    // the old one goes first.
    if !early_drop.is_empty() {
        steps.push(Box::new(AddressesRemove::new(
            name.clone(),
            ns.clone(),
            early_drop,
        )));
    }
    if !add.is_empty() {
        steps.push(Box::new(Addresses::new(name.clone(), ns.clone(), add)));
    }

    // 4.-8. Peers.
    let live_peers: BTreeMap<String, &wg_exec_steps::LivePeer> = live
        .device
        .peers
        .iter()
        .map(|p| (p.public_key.to_base64(), p))
        .collect();
    let mut new_peers = Vec::new();
    let mut gaining = Vec::new();
    let mut losing = Vec::new();
    for p in &cfg.peers {
        let key = p.public_key.to_base64();
        let Some(old) = live_peers.get(&key) else {
            new_peers.push(peer_plan(p));
            continue;
        };
        let desired_psk = match &p.preshared_key {
            Some(src) => Some(src.load(kernel).map_err(|mut e| {
                e.message = format!(
                    "read preshared key {} of peer {}: {}",
                    src.printable(),
                    p.name,
                    e.message
                );
                e
            })?),
            None => None,
        };
        // boringtun-cli does not report a preshared key it was not given; others report it.
        let psk_changed = desired_psk != old.preshared_key;
        let keepalive_changed = p.persistent_keepalive.unwrap_or(0) != old.persistent_keepalive;
        let configured = p.endpoint.as_ref();
        let recorded_ep = recorded.endpoints.get(&PublicKey::of(&p.public_key));
        let endpoint_changed = match (&configured, &recorded_ep) {
            (Some(now), Some(before)) => now != before,
            // A new endpoint for a peer that had none, or a peer wg-exec did not record.
            (Some(_), None) => true,
            (None, Some(before)) => {
                notes.push(format!(
                    "peer {}: endpoint {before} is no longer configured; WireGuard cannot clear an endpoint, so the peer keeps {} until the next down and up",
                    p.name,
                    old.endpoint.map(|e| e.to_string()).unwrap_or_else(|| "none".into())
                ));
                false
            }
            (None, None) => false,
        };
        let want_ips: BTreeSet<IpNet> = p.allowed_ips.iter().map(|n| n.trunc()).collect();
        let have_ips: BTreeSet<IpNet> = old.allowed_ips.iter().map(|n| n.trunc()).collect();
        let added: Vec<IpNet> = p
            .allowed_ips
            .iter()
            .filter(|n| !have_ips.contains(&n.trunc()))
            .copied()
            .collect();
        let removed = have_ips.iter().any(|n| !want_ips.contains(n));
        let allowed_ips = match (added.is_empty(), removed) {
            (true, false) => AllowedIpsChange::Unchanged,
            (false, false) => AllowedIpsChange::Append(added),
            (_, true) => AllowedIpsChange::Replace,
        };
        let update = PlannedUpdate {
            desired: peer_plan(p),
            old: (*old).clone(),
            preshared_key: psk_changed,
            endpoint: endpoint_changed,
            persistent_keepalive: keepalive_changed,
            allowed_ips,
        };
        if !update.preshared_key
            && !update.endpoint
            && !update.persistent_keepalive
            && update.allowed_ips == AllowedIpsChange::Unchanged
        {
            continue;
        }
        if !live.device.updates_in_place {
            notes.push(format!(
                "peer {}: the userspace implementation cannot update a peer in place; it is removed and added again, and its session restarts",
                p.name
            ));
        }
        match update.allowed_ips {
            AllowedIpsChange::Replace => losing.push(update),
            _ => gaining.push(update),
        }
    }
    let wanted_keys: BTreeSet<String> =
        cfg.peers.iter().map(|p| p.public_key.to_base64()).collect();
    let gone: Vec<wg_exec_steps::LivePeer> = live
        .device
        .peers
        .iter()
        .filter(|p| !wanted_keys.contains(&p.public_key.to_base64()))
        .cloned()
        .collect();
    for p in &gone {
        let key = p.public_key.to_base64();
        if !recorded.names.contains_key(&PublicKey::of(&p.public_key)) {
            notes.push(format!(
                "peer {key} is on the device but in no configuration wg-exec applied (added by hand?): it is removed"
            ));
        }
    }
    if !new_peers.is_empty() {
        let claimed: Vec<(Key, IpNet)> = new_peers
            .iter()
            .flat_map(|p| p.allowed_ips.iter().map(|ip| (p.public_key.clone(), *ip)))
            .collect();
        let back = give_back(&live.device, &claimed);
        steps.push(Box::new(
            PeerSet::new(name.clone(), ns.clone(), sock.clone(), new_peers).with_give_back(back),
        ));
    }
    if !gaining.is_empty() {
        let back = give_back(&live.device, &claims(&gaining));
        steps.push(Box::new(
            PeerUpdates::new(name.clone(), ns.clone(), sock.clone(), gaining, "changed")
                .with_give_back(back),
        ));
    }

    // 6. and 9. Routes: (table, destination, metric) is a route's identity.
    let want_routes = derived::routes(cfg);
    let have_routes: BTreeSet<Route> = live.routes.iter().cloned().collect();
    let add_routes: Vec<Route> = want_routes
        .iter()
        .filter(|r| !have_routes.contains(r))
        .cloned()
        .collect();
    let recorded_routes: BTreeSet<Route> = recorded.route_list().into_iter().collect();
    let want_set: BTreeSet<&Route> = want_routes.iter().collect();
    let drop_routes: Vec<Route> = recorded_routes
        .iter()
        .filter(|r| have_routes.contains(r) && !want_set.contains(r))
        .cloned()
        .collect();
    if !add_routes.is_empty() {
        steps.push(Box::new(Routes::new(
            name.clone(),
            ns.clone(),
            add_routes,
            cfg.table.label.clone(),
        )));
    }
    if !losing.is_empty() {
        let back = give_back(&live.device, &claims(&losing));
        steps.push(Box::new(
            PeerUpdates::new(name.clone(), ns.clone(), sock.clone(), losing, "losing")
                .with_give_back(back),
        ));
    }
    if !gone.is_empty() {
        steps.push(Box::new(PeerRemove::new(name.clone(), ns.clone(), gone)));
    }
    if !drop_routes.is_empty() {
        steps.push(Box::new(RoutesRemove::new(
            name.clone(),
            ns.clone(),
            drop_routes,
        )));
    }
    if !drop_addrs.is_empty() {
        steps.push(Box::new(AddressesRemove::new(
            name.clone(),
            ns.clone(),
            drop_addrs,
        )));
    }
    if let Some(m) = mtu_down {
        steps.push(Box::new(Mtu::new(name.clone(), ns.clone(), m)));
    }

    // 11. The private key, last.
    let desired = cfg.private_key.load(kernel).map_err(|mut e| {
        e.message = format!(
            "read private key {}: {}",
            cfg.private_key.printable(),
            e.message
        );
        e
    })?;
    let desired_public = crate::keys::public_of(&desired);
    if live_public(&live.device).as_ref() != Some(&desired_public) {
        notes.push(format!(
            "the private key changes (public key now {desired_public}): every peer's current session ends, and each peer must already know the new public key"
        ));
        steps.push(Box::new(KeyRotate {
            name: name.clone(),
            ns: ns.clone(),
            new: match &cfg.private_key {
                SecretSource::File(p) => SecretSource::File(p.clone()),
                SecretSource::Inline(k) => SecretSource::Inline(k.clone()),
            },
            old: live.device.private_key.clone(),
        }));
    }
    Ok(ReloadPlan { steps, notes })
}
