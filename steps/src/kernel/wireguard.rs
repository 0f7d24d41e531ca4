//! WireGuard's device and peers (genetlink "wireguard", or a userspace implementation's UAPI).

use super::{KernelError, Netns};
use crate::secret::Key;
use ipnet::IpNet;
use std::net::SocketAddr;

/// The WireGuard device and its peers.
pub trait WireGuard {
    fn wg_set_device(
        &mut self,
        ns: &Netns,
        name: &str,
        settings: &DeviceSettings,
    ) -> Result<(), KernelError>;
    /// Remove the private key, listen port and fwmark again.
    fn wg_clear_device(&mut self, ns: &Netns, name: &str) -> Result<(), KernelError>;
    /// Add (or update) peers. On failure, a prefix may have been applied.
    fn wg_set_peers(
        &mut self,
        ns: &Netns,
        name: &str,
        peers: &[PeerSettings],
    ) -> Result<(), KernelError>;
    /// Remove peers; absent ones are not an error.
    fn wg_remove_peers(&mut self, ns: &Netns, name: &str, keys: &[Key]) -> Result<(), KernelError>;
    /// Change existing peers, each as an update (see [`PeerUpdate`]).
    fn wg_update_peers(
        &mut self,
        ns: &Netns,
        name: &str,
        updates: &[PeerUpdate],
    ) -> Result<(), KernelError>;
    /// The device as it is now.
    fn wg_get(&mut self, ns: &Netns, name: &str) -> Result<LiveDevice, KernelError>;
}

/// Device-wide WireGuard settings of the key step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceSettings {
    pub private_key: Option<Key>,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
}

/// One peer as the kernel (or UAPI) receives it: keys loaded, endpoint resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSettings {
    pub public_key: Key,
    pub preshared_key: Option<Key>,
    pub endpoint: Option<SocketAddr>,
    /// Seconds; `Some(0)` turns keepalives off explicitly.
    pub persistent_keepalive: Option<u16>,
    pub allowed_ips: Vec<IpNet>,
}

/// A peer as the device holds it (read back with GET / `get=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePeer {
    pub public_key: Key,
    /// None when the device has none (or, for boringtun-cli, does not say).
    pub preshared_key: Option<Key>,
    /// What the device uses now: configured, or learnt by roaming.
    pub endpoint: Option<SocketAddr>,
    /// Seconds; 0 = off.
    pub persistent_keepalive: u16,
    pub allowed_ips: Vec<IpNet>,
    /// Seconds since the last handshake; None = never (or not reported).
    pub handshake_age: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// A device as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveDevice {
    /// None when no key is set, or when the implementation does not report it.
    pub private_key: Option<Key>,
    /// The device's public key when the implementation reports it without the private key.
    pub public_key: Option<Key>,
    /// The port the socket is bound to (chosen by the kernel when none was set).
    pub listen_port: u16,
    pub fwmark: u32,
    pub peers: Vec<LivePeer>,
    /// False when the implementation cannot change an existing peer in place (boringtun-cli):
    /// an update is then a removal and a new addition, and the peer's session restarts.
    pub updates_in_place: bool,
}

/// How a peer's allowed IPs change in an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedIpsChange {
    Unchanged,
    /// Only additions: appended without touching the others (no gap).
    Append(Vec<IpNet>),
    /// Some removed: the whole list replaces the old one.
    Replace,
}

/// A change to a peer that exists: only what changed is sent, as an update of that peer
/// (never creating it again if someone removed it meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerUpdate {
    /// The peer as it is to be afterwards (the endpoint as last known when it is not changed).
    pub peer: PeerSettings,
    pub preshared_key: bool,
    pub endpoint: bool,
    pub persistent_keepalive: bool,
    pub allowed_ips: AllowedIpsChange,
}

impl PeerUpdate {
    pub fn is_empty(&self) -> bool {
        !self.preshared_key
            && !self.endpoint
            && !self.persistent_keepalive
            && self.allowed_ips == AllowedIpsChange::Unchanged
    }
}
