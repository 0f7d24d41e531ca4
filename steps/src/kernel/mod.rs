//! The kernel seam: everything privileged wg-exec does, one small trait per noun. The real
//! implementation (netlink, UAPI, setns, processes) lives in the binary;
//! [`crate::fake::FakeKernel`] keeps state in memory so that every plan and every rollback path is
//! testable without root.
//!
//! [`Kernel`] is the sum of the noun traits ([`Files`], [`Modules`], [`Hooks`], [`Links`],
//! [`Addresses`], [`WireGuard`], [`Resolver`], [`Routes`], [`Rules`], [`Nftables`], [`Sysctl`],
//! [`Dns`]); anything that implements them all is a `Kernel`, so steps keep taking
//! `&mut dyn Kernel`. Code that calls the seam brings the noun traits into scope with
//! `use wg_exec_steps::kernel::prelude::*`.

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

pub use addresses::Addresses;
pub use dns::{Dns, DnsBackend, DnsSettings};
pub use files::{Files, SecretSource};
pub use hooks::Hooks;
pub use links::{Backend, LinkState, Links};
pub use modules::Modules;
pub use nftables::{NftTable, Nftables};
pub use resolver::{Endpoint, Resolve, Resolved, Resolver};
pub use routes::{BatchError, Route, Routes};
pub use rules::{PolicyRule, Rules};
pub use sysctl::Sysctl;
pub use wireguard::{
    AllowedIpsChange, DeviceSettings, LiveDevice, LivePeer, PeerSettings, PeerUpdate, WireGuard,
};

use std::fmt;

/// The noun traits, in scope without their names (which the steps' own types share:
/// [`crate::Addresses`] is a step, [`Addresses`] the seam it uses).
pub mod prelude {
    pub use super::Addresses as _;
    pub use super::Dns as _;
    pub use super::Files as _;
    pub use super::Hooks as _;
    pub use super::Kernel;
    pub use super::Links as _;
    pub use super::Modules as _;
    pub use super::Nftables as _;
    pub use super::Resolver as _;
    pub use super::Routes as _;
    pub use super::Rules as _;
    pub use super::Sysctl as _;
    pub use super::WireGuard as _;
}

/// Everything privileged. Each method acts in the namespace it is given and returns the kernel's
/// reason on failure; callers add what they were doing.
pub trait Kernel:
    Files
    + Modules
    + Hooks
    + Links
    + Addresses
    + WireGuard
    + Resolver
    + Routes
    + Rules
    + Nftables
    + Sysctl
    + Dns
{
}

impl<T> Kernel for T where
    T: Files
        + Modules
        + Hooks
        + Links
        + Addresses
        + WireGuard
        + Resolver
        + Routes
        + Rules
        + Nftables
        + Sysctl
        + Dns
        + ?Sized
{
}

/// A network namespace as the configuration names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(from = "Option<String>", into = "Option<String>")
)]
pub enum Netns {
    /// The namespace wg-exec was started in (the module's `null`).
    Current,
    /// PID 1's network namespace (the module's `"init"`).
    Init,
    /// A named namespace, /run/netns/NAME.
    Named(String),
}

impl Netns {
    /// `None` → the current namespace, `"init"` → PID 1's, anything else → /run/netns/NAME.
    pub fn from_option(name: Option<&str>) -> Netns {
        match name {
            None => Netns::Current,
            Some("init") => Netns::Init,
            Some(n) => Netns::Named(n.to_string()),
        }
    }

    /// `ip -n NS ` prefix for `--print` (empty for the current and the init namespace, as the
    /// module treats both alike).
    pub fn ip_prefix(&self) -> String {
        match self {
            Netns::Named(n) => format!("ip -n {n}"),
            _ => "ip".to_string(),
        }
    }

    /// `ip netns exec NS ` prefix for commands that are not iproute2's.
    pub fn exec_prefix(&self) -> String {
        match self {
            Netns::Named(n) => format!("ip netns exec {n} "),
            _ => String::new(),
        }
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netns::Current => f.write_str("the current netns"),
            Netns::Init => f.write_str("the init netns"),
            Netns::Named(n) => write!(f, "netns {n}"),
        }
    }
}

/// The kernel's answer to a failed request: errno and, when the kernel sent one, its
/// extended-ack text. Displays as "Unknown device type (os error 95)" style text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    pub errno: Option<i32>,
    pub message: String,
}

impl KernelError {
    pub fn new(message: impl Into<String>) -> KernelError {
        KernelError {
            errno: None,
            message: message.into(),
        }
    }

    /// From an errno, with the kernel's extended-ack text when there is one.
    pub fn from_errno(errno: i32, ext_ack: Option<&str>) -> KernelError {
        let base = std::io::Error::from_raw_os_error(errno).to_string();
        let message = match ext_ack {
            Some(text) if !text.is_empty() => format!("{text}: {base}"),
            _ => base,
        };
        KernelError {
            errno: Some(errno),
            message,
        }
    }

    pub fn from_io(err: &std::io::Error) -> KernelError {
        KernelError {
            errno: err.raw_os_error(),
            message: err.to_string(),
        }
    }

    pub fn is_errno(&self, errno: i32) -> bool {
        self.errno == Some(errno)
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KernelError {}

/// How the journal writes a namespace: none for the current one, "init", or the name.
impl From<Netns> for Option<String> {
    fn from(ns: Netns) -> Option<String> {
        match ns {
            Netns::Current => None,
            Netns::Init => Some("init".into()),
            Netns::Named(n) => Some(n),
        }
    }
}

impl From<Option<String>> for Netns {
    fn from(name: Option<String>) -> Netns {
        Netns::from_option(name.as_deref())
    }
}
