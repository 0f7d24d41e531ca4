//! The real kernel's endpoint resolution in the socket namespace.

use crate::linux::{netns, resolve, LinuxKernel};
use std::net::SocketAddr;
use wg_exec_steps::kernel::Resolver;
use wg_exec_steps::{Endpoint, KernelError, Netns, Resolve, Resolved};

impl Resolver for LinuxKernel {
    fn resolve_endpoints(
        &mut self,
        ns: &Netns,
        endpoints: &[Endpoint],
        how: Resolve,
    ) -> Vec<Resolved> {
        // Literals need no resolver (and no namespace).
        let names: Vec<String> = endpoints
            .iter()
            .filter(|e| e.host.parse::<std::net::IpAddr>().is_err())
            .map(|e| e.host.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let policy = match (how, resolve::retries_from_env()) {
            (Resolve::Configure, Some(n)) => resolve::Policy::Retries(n),
            (Resolve::Configure, None) => resolve::Policy::Bounded(resolve::CONFIGURE_BOUND),
            (Resolve::Once, _) => resolve::Policy::Once,
        };
        let answers = match names.is_empty() {
            true => Some(Vec::new()),
            false => {
                // The namespace is entered only when it is not the current one; its
                // /etc/netns files are used when it is entered by name.
                let (target, etc) = match ns {
                    Netns::Current => (None, None),
                    other => match self.ns_file(other) {
                        Err(e) => {
                            return endpoints
                                .iter()
                                .map(|_| Resolved::Failed(e.clone()))
                                .collect()
                        }
                        Ok(f) if netns::same(&f, &self.home) => (None, None),
                        Ok(f) => {
                            let etc = match other {
                                Netns::Named(n) => resolve::etc_netns(n),
                                _ => None,
                            };
                            (Some(f), etc)
                        }
                    },
                };
                resolve::resolve_all(&names, target.as_ref(), etc.as_deref(), policy, &self.stop)
            }
        };
        let Some(answers) = answers else {
            let e = KernelError::new("interrupted by a signal while resolving endpoint names");
            return endpoints
                .iter()
                .map(|_| Resolved::Failed(e.clone()))
                .collect();
        };
        endpoints
            .iter()
            .map(|ep| {
                if let Ok(ip) = ep.host.parse::<std::net::IpAddr>() {
                    return Resolved::Addrs(vec![SocketAddr::new(ip, ep.port)]);
                }
                let i = names
                    .iter()
                    .position(|n| *n == ep.host)
                    .expect("collected above");
                match &answers[i] {
                    Ok(addrs) => Resolved::Addrs(
                        addrs.iter().map(|a| SocketAddr::new(*a, ep.port)).collect(),
                    ),
                    Err(f) => match policy {
                        resolve::Policy::Retries(_) => {
                            Resolved::Failed(KernelError::new(f.to_string()))
                        }
                        _ => Resolved::Later(f.to_string()),
                    },
                }
            })
            .collect()
    }
}
