//! Links: the WireGuard interface itself, its namespace, MTU and state, and the processes of a
//! userspace implementation behind it.

use super::{KernelError, Netns};

/// The link (rtnetlink's links, and a userspace implementation's process).
pub trait Links {
    fn link_add(&mut self, ns: &Netns, name: &str, backend: &Backend) -> Result<(), KernelError>;
    /// Delete the link; for a userspace device, also wait until its process let go of the
    /// UAPI socket. ENODEV when it does not exist.
    fn link_del(&mut self, ns: &Netns, name: &str) -> Result<(), KernelError>;
    fn link_exists(&mut self, ns: &Netns, name: &str) -> Result<bool, KernelError>;
    /// The link's index (for the journal).
    fn link_index(&mut self, ns: &Netns, name: &str) -> Result<u32, KernelError>;
    /// The processes of a userspace implementation serving `name` (for the journal); none for
    /// a kernel device.
    fn userspace_pids(&mut self, name: &str) -> Vec<i32>;
    /// The processes an earlier run recorded for `name` (from the journal), so that deleting
    /// the link stops exactly those.
    fn expect_userspace(&mut self, _name: &str, _pids: &[i32]) {}
    fn link_set_netns(&mut self, ns: &Netns, name: &str, to: &Netns) -> Result<(), KernelError>;
    fn link_mtu(&mut self, ns: &Netns, name: &str) -> Result<u32, KernelError>;
    fn link_set_mtu(&mut self, ns: &Netns, name: &str, mtu: u32) -> Result<(), KernelError>;
    fn link_set_up(&mut self, ns: &Netns, name: &str, up: bool) -> Result<(), KernelError>;
    /// The link's index, MTU and whether it is up; None when there is no such link.
    fn link_state(&mut self, ns: &Netns, name: &str) -> Result<Option<LinkState>, KernelError>;
}

/// Which WireGuard implementation backs the link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Backend {
    /// The kernel's when it has WireGuard, else the userspace program.
    Auto {
        userspace: String,
    },
    Kernel,
    /// A userspace implementation speaking the cross-platform UAPI (wireguard-go, boringtun-cli).
    Userspace {
        program: String,
    },
}

/// A link as rtnetlink shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub mtu: u32,
    pub up: bool,
}
