//! wg-quick's automatic MTU for a full tunnel without `mtu`.

use crate::kernel::{Kernel, KernelError, Netns};
use crate::step::{object, Needs, Step, StepError, StepKind};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

/// wg-quick's MTU for a full tunnel without `mtu`: the smallest MTU of the routes to the
/// endpoints (the route's `mtu`, else its device's), else the default route's, else 1500; minus
/// 80 (an IPv6 outer header, UDP and WireGuard's framing). Runs after the peers, whose endpoints
/// it reads back from the device as resolved.
pub struct AutoMtu {
    pub name: String,
    pub ns: Netns,
    /// Where the UDP socket is, whose routes carry the encrypted packets.
    pub socket_ns: Netns,
    pub has_ipv6_addresses: bool,
    previous: Option<u32>,
}

/// IPv6 needs at least this.
const IPV6_MIN_MTU: u32 = 1280;

impl AutoMtu {
    pub fn new(name: String, ns: Netns, socket_ns: Netns, has_ipv6_addresses: bool) -> AutoMtu {
        AutoMtu {
            name,
            ns,
            socket_ns,
            has_ipv6_addresses,
            previous: None,
        }
    }

    /// The MTU to set.
    pub fn choose(&self, kernel: &mut dyn Kernel) -> Result<u32, StepError> {
        let dev = kernel
            .wg_get(&self.ns, &self.name)
            .map_err(|e| StepError::new(format!("read the endpoints of {}", self.describe()), e))?;
        let endpoints: BTreeSet<IpAddr> = dev
            .peers
            .iter()
            .filter_map(|p| p.endpoint.map(|e| e.ip()))
            .collect();
        let mut best: Option<u32> = None;
        for ip in &endpoints {
            let mtu = kernel.route_mtu(&self.socket_ns, *ip).map_err(|e| {
                StepError::new(
                    format!("find the route to endpoint {ip} in {}", self.socket_ns),
                    e,
                )
            })?;
            if let Some(m) = mtu {
                best = Some(best.map_or(m, |b| b.min(m)));
            }
        }
        if best.is_none() {
            // No endpoint with a route: the default route's (IPv4, as wg-quick).
            best = kernel
                .route_mtu(&self.socket_ns, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                .map_err(|e| {
                    StepError::new(format!("find the default route in {}", self.socket_ns), e)
                })?;
        }
        Ok(best.unwrap_or(1500).saturating_sub(80))
    }
}

impl Step for AutoMtu {
    fn kind(&self) -> StepKind {
        StepKind::AutoMtu
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns, &self.socket_ns])
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        vec![format!(
            "{} link set dev {} mtu $MTU  # automatic: the smallest MTU of the routes to the endpoints, else the default route's, else 1500; minus 80",
            self.ns.ip_prefix(),
            self.name
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let mtu = self.choose(kernel)?;
        let action = || format!("set the automatic mtu {mtu} on {}", self.describe());
        if mtu < IPV6_MIN_MTU && self.has_ipv6_addresses {
            return Err(StepError::new(
                action(),
                KernelError::new(format!(
                    "it is below IPv6's minimum of {IPV6_MIN_MTU} and the link has IPv6 addresses; set `mtu`"
                )),
            ));
        }
        let previous = kernel
            .link_mtu(&self.ns, &self.name)
            .map_err(|e| StepError::new(action(), e))?;
        if previous != mtu {
            kernel
                .link_set_mtu(&self.ns, &self.name, mtu)
                .map_err(|e| StepError::new(action(), e))?;
            self.previous = Some(previous);
        }
        log::info!("{}: automatic mtu {mtu}", self.describe());
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        crate::link::restore_mtu(kernel, &self.ns, &self.name, self.previous.take())
    }

    fn rollback_is_noop(&self) -> bool {
        self.previous.is_none()
    }
}
