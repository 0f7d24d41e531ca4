//! The link's DNS settings, through systemd-resolved or resolvconf.

use super::{KernelError, Netns};
use std::fmt;

/// The host's DNS backends.
pub trait Dns {
    /// The DNS backend serving the host now: systemd-resolved when its bus name has an owner,
    /// else a `resolvconf` program; None when there is neither.
    fn dns_available(&mut self) -> Option<DnsBackend>;
    /// Give link `name` (in `ns`, the host's namespace) these DNS settings through `backend`,
    /// and read them back where the backend can say. On failure, nothing is left set.
    fn dns_set(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
        settings: &DnsSettings,
    ) -> Result<(), KernelError>;
    /// Whether the link's DNS settings are still `settings` (status); None when the backend
    /// cannot say (resolvconf has no read-back).
    fn dns_matches(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
        settings: &DnsSettings,
    ) -> Result<Option<bool>, KernelError>;
    /// Remove the link's DNS settings; a link that is gone, or has none, is not an error.
    fn dns_revert(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
    ) -> Result<(), KernelError>;
}

/// Who applies a link's DNS settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DnsBackend {
    /// systemd-resolved, through its D-Bus API (org.freedesktop.resolve1).
    Resolved,
    /// A `resolvconf` program (openresolv, Debian's resolvconf or systemd's shim).
    Resolvconf,
}

impl DnsBackend {
    /// How messages and the journal name it.
    pub fn name(self) -> &'static str {
        match self {
            DnsBackend::Resolved => "systemd-resolved",
            DnsBackend::Resolvconf => "resolvconf",
        }
    }

    pub fn from_name(name: &str) -> Option<DnsBackend> {
        [DnsBackend::Resolved, DnsBackend::Resolvconf]
            .into_iter()
            .find(|b| b.name() == name)
    }
}

impl fmt::Display for DnsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The DNS settings of a link, as systemd-resolved takes them (see [`crate::dns`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsSettings {
    pub servers: Vec<std::net::IpAddr>,
    /// Search domains: single-label names are completed with them, and queries for names
    /// under them go to this link.
    pub search: Vec<String>,
    /// Routing-only domains, without their `~` ("." = every name).
    pub routing: Vec<String>,
    /// Whether the link's servers are asked for names that no link's domain matches.
    pub default_route: bool,
}
