//! Endpoint names, resolved where the tunnel's UDP socket lives.

use super::{KernelError, Netns};
use std::fmt;
use std::net::SocketAddr;

/// Name resolution of endpoints.
pub trait Resolver {
    /// Resolve endpoints where the tunnel's UDP socket lives (the socket namespace, with its
    /// /etc/netns/NS files), all at once; one answer per endpoint, in order.
    fn resolve_endpoints(
        &mut self,
        ns: &Netns,
        endpoints: &[Endpoint],
        how: Resolve,
    ) -> Vec<Resolved>;
}

/// An endpoint as configured: a host name or address literal and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How hard to try a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// up and reload: with WG_ENDPOINT_RESOLUTION_RETRIES set, as `wg` does (a name that does not
    /// resolve then fails the step); else for a bounded time, after which the peer is
    /// configured without its endpoint and left to `wg-exec refresh`.
    Configure,
    /// refresh: one attempt each, within a bounded time.
    Once,
}

/// An endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Every address, in the resolver's order (the first is the one to use).
    Addrs(Vec<SocketAddr>),
    /// Did not resolve within the bound: configure the peer without it (the reason).
    Later(String),
    /// Failed for good.
    Failed(KernelError),
}
