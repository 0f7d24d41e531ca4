//! The real kernel's WireGuard devices and peers (genetlink "wireguard" or UAPI).

use crate::linux::genl::MESSAGE_LIMIT;
use crate::linux::{genl, uapi, LinuxKernel};
use wg_exec_steps::kernel::WireGuard;
use wg_exec_steps::{
    DeviceSettings, KernelError, Key, LiveDevice, Netns, PeerSettings, PeerUpdate,
};

impl WireGuard for LinuxKernel {
    fn wg_set_device(
        &mut self,
        ns: &Netns,
        name: &str,
        settings: &DeviceSettings,
    ) -> Result<(), KernelError> {
        if self.uapi_device(name)? {
            return uapi::request(name, uapi::set_device(settings));
        }
        self.genl_send(ns, vec![genl::set_device(name, settings)])
    }

    fn wg_clear_device(&mut self, ns: &Netns, name: &str) -> Result<(), KernelError> {
        if self.uapi_device(name)? {
            return uapi::request(name, uapi::clear_device());
        }
        self.genl_send(ns, vec![genl::clear_device(name)])
    }

    fn wg_set_peers(
        &mut self,
        ns: &Netns,
        name: &str,
        peers: &[PeerSettings],
    ) -> Result<(), KernelError> {
        if self.uapi_device(name)? {
            if self.peers_carry_over(name)? {
                // boringtun-cli carries a peer's preshared key, endpoint and keepalive over
                // to the next peer of the same request: one request per peer.
                for p in peers {
                    uapi::request(name, uapi::set_peers(std::slice::from_ref(p)))?;
                }
                return Ok(());
            }
            return uapi::request(name, uapi::set_peers(peers));
        }
        let msgs = genl::set_peers(name, peers, MESSAGE_LIMIT);
        self.genl_send(ns, msgs)
    }

    fn wg_remove_peers(&mut self, ns: &Netns, name: &str, keys: &[Key]) -> Result<(), KernelError> {
        if self.uapi_device(name)? {
            return uapi::request(name, uapi::remove_peers(keys));
        }
        let msgs = genl::remove_peers(name, keys, MESSAGE_LIMIT);
        self.genl_send(ns, msgs)
    }

    fn wg_update_peers(
        &mut self,
        ns: &Netns,
        name: &str,
        updates: &[PeerUpdate],
    ) -> Result<(), KernelError> {
        if self.uapi_device(name)? {
            if self.peers_carry_over(name)? {
                // boringtun-cli panics on an update of an existing peer: remove it and add it
                // again, whole. Its session restarts.
                for u in updates {
                    log::warn!(
                        "{name}: the userspace implementation cannot update peer {} in place: removing and adding it again, its session restarts",
                        u.peer.public_key.to_base64()
                    );
                }
                let keys: Vec<Key> = updates.iter().map(|u| u.peer.public_key.clone()).collect();
                let peers: Vec<PeerSettings> = updates.iter().map(|u| u.peer.clone()).collect();
                uapi::request(name, uapi::remove_peers(&keys))?;
                for p in &peers {
                    uapi::request(name, uapi::set_peers(std::slice::from_ref(p)))?;
                }
                return Ok(());
            }
            return uapi::request(name, uapi::update_peers(updates));
        }
        let msgs = genl::update_peers(name, updates, MESSAGE_LIMIT);
        self.genl_send(ns, msgs)
    }

    fn wg_get(&mut self, ns: &Netns, name: &str) -> Result<LiveDevice, KernelError> {
        if self.uapi_device(name)? {
            let dev = uapi::get(name)?;
            // What kind of implementation it is comes with the answer: no second read later.
            self.flavour.insert(name.to_string(), !dev.updates_in_place);
            return Ok(dev);
        }
        let (conn, family) = self.genl(ns)?;
        let replies = conn.dump(|| {
            let mut m = netlink_packet_generic::GenlMessage::from_payload(genl::get_device(name));
            m.set_resolved_family_id(family);
            m
        })?;
        Ok(genl::parse_device(
            replies.into_iter().map(|g| g.payload).collect(),
        ))
    }
}
