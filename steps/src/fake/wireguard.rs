//! [`crate::kernel::WireGuard`] on the fake kernel: in memory, every call recorded and failable.

use super::{label, FakeKernel};
use crate::kernel::WireGuard;
use crate::kernel::{
    AllowedIpsChange, DeviceSettings, KernelError, LiveDevice, LivePeer, Netns, PeerSettings,
    PeerUpdate,
};
use crate::secret::Key;
use ipnet::IpNet;
use std::collections::BTreeMap;

impl WireGuard for FakeKernel {
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
