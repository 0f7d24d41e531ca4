//! [`crate::kernel::Resolver`] on the fake kernel: in memory, every call recorded and failable.

use super::{label, FakeKernel};
use crate::kernel::Resolver;
use crate::kernel::{Endpoint, KernelError, Netns, Resolve, Resolved};
use std::net::IpAddr;
use std::net::SocketAddr;

impl Resolver for FakeKernel {
    fn resolve_endpoints(
        &mut self,
        ns: &Netns,
        endpoints: &[Endpoint],
        _how: Resolve,
    ) -> Vec<Resolved> {
        let list: Vec<String> = endpoints.iter().map(|e| e.to_string()).collect();
        if let Err(e) = self.call(format!(
            "resolve_endpoints {} {}",
            label(ns),
            list.join(" ")
        )) {
            return endpoints
                .iter()
                .map(|_| Resolved::Failed(e.clone()))
                .collect();
        }
        if let Err(e) = self.check_ns(ns) {
            return endpoints
                .iter()
                .map(|_| Resolved::Failed(e.clone()))
                .collect();
        }
        endpoints
            .iter()
            .map(|ep| match ep.host.parse::<IpAddr>() {
                Ok(ip) => Resolved::Addrs(vec![SocketAddr::new(ip, ep.port)]),
                Err(_) => match self.hosts.get(&ep.host) {
                    Some(ip) => Resolved::Addrs(vec![SocketAddr::new(*ip, ep.port)]),
                    None if self.later_hosts.contains(&ep.host) => {
                        Resolved::Later("Temporary failure in name resolution".into())
                    }
                    None => Resolved::Failed(KernelError::new("Name or service not known")),
                },
            })
            .collect()
    }
}
