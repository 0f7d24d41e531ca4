//! [`crate::kernel::Routes`] on the fake kernel: in memory, every call recorded and failable.

use super::{label, FakeKernel, EEXIST};
use crate::kernel::Routes;
use crate::kernel::{BatchError, KernelError, Netns, Route};
use ipnet::IpNet;
use std::net::IpAddr;

impl Routes for FakeKernel {
    fn route_list(&mut self, ns: &Netns, name: &str) -> Result<Vec<Route>, KernelError> {
        self.call(format!("route_list {} {name}", label(ns)))?;
        self.link(ns, name)?;
        Ok(self
            .state
            .routes
            .iter()
            .filter(|(n, d, _)| n == ns && d == name)
            .map(|(_, _, r)| r.clone())
            .collect())
    }

    fn route_replace(&mut self, ns: &Netns, dev: &str, routes: &[Route]) -> Result<(), BatchError> {
        let whole = |e: KernelError| BatchError {
            failed: (0..routes.len()).map(|i| (i, e.clone())).collect(),
        };
        self.call(format!(
            "route_replace {} {dev} {}",
            label(ns),
            routes.len()
        ))
        .map_err(whole)?;
        self.link(ns, dev).map_err(whole)?;
        let mut failed = Vec::new();
        let fail_item = self.fail_batch_item.take();
        for (i, r) in routes.iter().enumerate() {
            match &fail_item {
                Some((n, e)) if *n == i => failed.push((i, e.clone())),
                _ => {
                    // `replace`: one route per (table, destination, metric).
                    self.state
                        .routes
                        .retain(|(rns, _, x)| !(rns == ns && x == r));
                    self.state
                        .routes
                        .insert((ns.clone(), dev.to_string(), r.clone()));
                }
            }
        }
        match failed.is_empty() {
            true => Ok(()),
            false => Err(BatchError { failed }),
        }
    }

    fn route_del(&mut self, ns: &Netns, dev: &str, routes: &[Route]) -> Result<(), BatchError> {
        let whole = |e: KernelError| BatchError {
            failed: (0..routes.len()).map(|i| (i, e.clone())).collect(),
        };
        self.call(format!("route_del {} {dev} {}", label(ns), routes.len()))
            .map_err(whole)?;
        self.check_ns(ns).map_err(whole)?;
        for r in routes {
            self.state
                .routes
                .remove(&(ns.clone(), dev.to_string(), r.clone()));
        }
        Ok(())
    }

    fn route_unreachable(
        &mut self,
        ns: &Netns,
        dst: &IpNet,
        table: u32,
        add: bool,
    ) -> Result<(), KernelError> {
        let verb = if add { "add" } else { "del" };
        self.call(format!(
            "route_unreachable {} {verb} {dst} {table}",
            label(ns)
        ))?;
        self.check_ns(ns)?;
        if matches!(dst, IpNet::V6(_)) && self.no_ipv6 {
            return Err(KernelError::from_errno(97, None));
        }
        let key = (ns.clone(), *dst, table);
        if add && !self.state.unreachable.insert(key.clone()) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        if !add && !self.state.unreachable.remove(&key) {
            return Err(KernelError::from_errno(3, None));
        }
        Ok(())
    }

    fn table_routes(&mut self, ns: &Netns, table: u32) -> Result<Vec<(IpNet, bool)>, KernelError> {
        self.call(format!("table_routes {} {table}", label(ns)))?;
        self.check_ns(ns)?;
        let mut out: Vec<(IpNet, bool)> = self
            .state
            .routes
            .iter()
            .filter(|(n, _, r)| n == ns && r.table == table)
            .map(|(_, _, r)| (r.dst, false))
            .collect();
        out.extend(
            self.state
                .unreachable
                .iter()
                .filter(|(n, _, t)| n == ns && *t == table)
                .map(|(_, d, _)| (*d, true)),
        );
        Ok(out)
    }

    fn route_mtu(&mut self, ns: &Netns, dst: IpAddr) -> Result<Option<u32>, KernelError> {
        self.call(format!("route_mtu {} {dst}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self.path_mtu.get(&dst).copied())
    }
}
