//! Routes: through the link, in a full tunnel's table, and the path MTU.

use super::{KernelError, Netns};
use ipnet::IpNet;
use std::net::IpAddr;

/// Routes (rtnetlink's routes).
pub trait Routes {
    /// The routes through the link that are not the kernel's own (those of its addresses, the
    /// local table, multicast), in every table.
    fn route_list(&mut self, ns: &Netns, name: &str) -> Result<Vec<Route>, KernelError>;

    /// `ip route replace DST dev NAME table T [metric M]` for each route, in one pipeline.
    fn route_replace(&mut self, ns: &Netns, dev: &str, routes: &[Route]) -> Result<(), BatchError>;
    /// Delete routes through `dev`; absent ones are not an error.
    fn route_del(&mut self, ns: &Netns, dev: &str, routes: &[Route]) -> Result<(), BatchError>;
    /// `ip route add unreachable DST table T` (or `del`); absent on delete is ENOENT/ESRCH.
    fn route_unreachable(
        &mut self,
        ns: &Netns,
        dst: &IpNet,
        table: u32,
        add: bool,
    ) -> Result<(), KernelError>;
    /// The destinations of every route in `table` (both families, any device or type), each
    /// with whether it is an unreachable route.
    fn table_routes(&mut self, ns: &Netns, table: u32) -> Result<Vec<(IpNet, bool)>, KernelError>;
    /// The MTU of the path to `dst` as the routing table has it: the route's `mtu`, else its
    /// output device's MTU. None when there is no route.
    fn route_mtu(&mut self, ns: &Netns, dst: IpAddr) -> Result<Option<u32>, KernelError>;
}

/// A route to `dst` through the WireGuard link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Route {
    pub dst: IpNet,
    pub table: u32,
    pub metric: Option<u32>,
}

impl Route {
    /// A route with its metric as the kernel reports it back, so that a configured route and a
    /// live one compare equal: IPv4 metric 0 is reported as none, and IPv6 metric 0 becomes the
    /// default 1024, which is reported as none too.
    pub fn new(dst: IpNet, table: u32, metric: Option<u32>) -> Route {
        let metric = match (dst, metric) {
            (IpNet::V4(_), Some(0)) | (IpNet::V6(_), Some(0 | 1024)) => None,
            (_, m) => m,
        };
        Route { dst, table, metric }
    }
}

/// A batch request (many routes in one pipeline) in which some items failed. Every item not
/// listed in `failed` was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    pub failed: Vec<(usize, KernelError)>,
}
