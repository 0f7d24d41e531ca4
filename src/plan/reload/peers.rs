//! The peers' part of a reload: which peers are new, change, lose allowed IPs or go, and the
//! steps of positions 4, 5, 7 and 8, with the updates that give claimed prefixes back on undo.

use super::{recorded_endpoint, recorded_peer, Reload};
use crate::plan::peer_plan;
use ipnet::IpNet;
use std::collections::{BTreeSet, HashMap, HashSet};
use wg_exec_steps::PeerRemove;
use wg_exec_steps::{
    AllowedIpsChange, Kernel, KernelError, Key, LiveDevice, LivePeer, PeerSettings, PeerUpdate,
    Step,
};
use wg_exec_steps::{PeerPlan, PeerSet};
use wg_exec_steps::{PeerUpdates, PlannedUpdate};

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
/// update in place re-adds it as it was. A peer owning none of the claimed prefixes is passed
/// over with one lookup per allowed IP.
fn give_back(dev: &LiveDevice, claimed: &[(Key, IpNet)]) -> Vec<PeerUpdate> {
    if claimed.is_empty() {
        return Vec::new();
    }
    let prefixes: HashSet<IpNet> = claimed.iter().map(|(_, ip)| ip.trunc()).collect();
    let mut out = Vec::new();
    for owner in &dev.peers {
        if !owner.allowed_ips.iter().any(|n| prefixes.contains(n)) {
            continue;
        }
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

/// How a configured peer's allowed IPs differ from the live peer's (compared as prefixes).
fn allowed_ips_change(want: &[IpNet], have: &[IpNet]) -> AllowedIpsChange {
    // The common case, the same list in the same order, without building a set.
    if want.len() == have.len() && want.iter().zip(have).all(|(w, h)| w.trunc() == h.trunc()) {
        return AllowedIpsChange::Unchanged;
    }
    let want_ips: BTreeSet<IpNet> = want.iter().map(|n| n.trunc()).collect();
    let have_ips: BTreeSet<IpNet> = have.iter().map(|n| n.trunc()).collect();
    let added: Vec<IpNet> = want
        .iter()
        .filter(|n| !have_ips.contains(&n.trunc()))
        .copied()
        .collect();
    let removed = have_ips.iter().any(|n| !want_ips.contains(n));
    match (added.is_empty(), removed) {
        (true, false) => AllowedIpsChange::Unchanged,
        (false, false) => AllowedIpsChange::Append(added),
        (_, true) => AllowedIpsChange::Replace,
    }
}

/// The peers' diff, by the positions that take it.
#[derive(Default)]
pub(super) struct Peers {
    /// 4. On the device next.
    pub(super) new: Vec<PeerPlan>,
    /// 5. Changed attributes, or allowed IPs added only.
    pub(super) gaining: Vec<PlannedUpdate>,
    /// 7. Allowed IPs that go.
    pub(super) losing: Vec<PlannedUpdate>,
    /// 8. On the device, in no configuration.
    pub(super) gone: Vec<LivePeer>,
}

impl Reload<'_> {
    /// The peers' diff. A peer the device has as configured costs a lookup and a few
    /// comparisons (and the read of its preshared key file, which may have changed).
    pub(super) fn peers(&mut self, kernel: &mut dyn Kernel) -> Result<Peers, KernelError> {
        let (cfg, live) = (self.cfg, self.live);
        let on_device: HashMap<&Key, &LivePeer> = live
            .device
            .peers
            .iter()
            .map(|p| (&p.public_key, p))
            .collect();
        let mut out = Peers::default();
        let mut found = 0;
        for p in &cfg.peers {
            let Some(old) = on_device.get(&p.public_key).copied() else {
                out.new.push(peer_plan(p));
                continue;
            };
            found += 1;
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
            let endpoint_changed = match (
                &p.endpoint,
                recorded_endpoint(self.recorded, &p.public_key),
            ) {
                (Some(now), Some(before)) => now != before,
                // A new endpoint for a peer that had none, or a peer wg-exec did not record.
                (Some(_), None) => true,
                (None, Some(before)) => {
                    self.notes.push(format!(
                        "peer {}: endpoint {before} is no longer configured; WireGuard cannot clear an endpoint, so the peer keeps {} until the next down and up",
                        p.name,
                        old.endpoint.map(|e| e.to_string()).unwrap_or_else(|| "none".into())
                    ));
                    false
                }
                (None, None) => false,
            };
            let allowed_ips = allowed_ips_change(&p.allowed_ips, &old.allowed_ips);
            if !psk_changed
                && !endpoint_changed
                && !keepalive_changed
                && allowed_ips == AllowedIpsChange::Unchanged
            {
                continue;
            }
            if !live.device.updates_in_place {
                self.notes.push(format!(
                    "peer {}: the userspace implementation cannot update a peer in place; it is removed and added again, and its session restarts",
                    p.name
                ));
            }
            let update = PlannedUpdate {
                desired: peer_plan(p),
                old: old.clone(),
                preshared_key: psk_changed,
                endpoint: endpoint_changed,
                persistent_keepalive: keepalive_changed,
                allowed_ips,
            };
            match update.allowed_ips {
                AllowedIpsChange::Replace => out.losing.push(update),
                _ => out.gaining.push(update),
            }
        }
        // Every live peer is configured (the device holds each key once): none goes.
        if found < live.device.peers.len() {
            let wanted: HashSet<&Key> = cfg.peers.iter().map(|p| &p.public_key).collect();
            for p in &live.device.peers {
                if wanted.contains(&p.public_key) {
                    continue;
                }
                if !recorded_peer(self.recorded, &p.public_key) {
                    self.notes.push(format!(
                        "peer {} is on the device but in no configuration wg-exec applied (added by hand?): it is removed",
                        p.public_key.to_base64()
                    ));
                }
                out.gone.push(p.clone());
            }
        }
        Ok(out)
    }

    /// Position 4: new peers, once the device has its addresses; a prefix they take from a
    /// live peer is given back by the undo.
    pub(super) fn new_peers(&self, new: Vec<PeerPlan>) -> Option<Box<dyn Step>> {
        if new.is_empty() {
            return None;
        }
        let claimed: Vec<(Key, IpNet)> = new
            .iter()
            .flat_map(|p| p.allowed_ips.iter().map(|ip| (p.public_key.clone(), *ip)))
            .collect();
        let back = give_back(&self.live.device, &claimed);
        Some(Box::new(
            PeerSet::new(self.name.clone(), self.ns.clone(), self.sock.clone(), new)
                .with_give_back(back),
        ))
    }

    /// Positions 5 and 7: peers that only gain or change attributes, before the routes that
    /// use them; peers that lose allowed IPs, after every claimer took its prefixes.
    pub(super) fn updates(
        &self,
        updates: Vec<PlannedUpdate>,
        label: &'static str,
    ) -> Option<Box<dyn Step>> {
        if updates.is_empty() {
            return None;
        }
        let back = give_back(&self.live.device, &claims(&updates));
        Some(Box::new(
            PeerUpdates::new(
                self.name.clone(),
                self.ns.clone(),
                self.sock.clone(),
                updates,
                label,
            )
            .with_give_back(back),
        ))
    }

    /// 8. Peers that go, once their prefixes are elsewhere.
    pub(super) fn peers_remove(&self, gone: Vec<LivePeer>) -> Option<Box<dyn Step>> {
        (!gone.is_empty())
            .then(|| Box::new(PeerRemove::new(self.name.clone(), self.ns.clone(), gone)) as _)
    }
}
