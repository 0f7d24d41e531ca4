//! The real kernel's routes (rtnetlink).

use crate::linux::{rtnl, LinuxKernel};
use ipnet::IpNet;
use wg_exec_steps::kernel::Routes;
use wg_exec_steps::{BatchError, KernelError, Netns, Route};

impl Routes for LinuxKernel {
    fn route_list(&mut self, ns: &Netns, name: &str) -> Result<Vec<Route>, KernelError> {
        let index = self.index(ns, name)?;
        rtnl::routes_via(self.route(ns)?, index)
    }

    fn route_replace(&mut self, ns: &Netns, dev: &str, routes: &[Route]) -> Result<(), BatchError> {
        self.routes(ns, dev, routes, false)
    }

    fn route_del(&mut self, ns: &Netns, dev: &str, routes: &[Route]) -> Result<(), BatchError> {
        self.routes(ns, dev, routes, true)
    }

    fn route_unreachable(
        &mut self,
        ns: &Netns,
        dst: &IpNet,
        table: u32,
        add: bool,
    ) -> Result<(), KernelError> {
        rtnl::unreachable(self.route(ns)?, dst, table, add)
    }

    fn table_routes(&mut self, ns: &Netns, table: u32) -> Result<Vec<(IpNet, bool)>, KernelError> {
        rtnl::table_routes(self.route(ns)?, table)
    }

    fn route_mtu(&mut self, ns: &Netns, dst: std::net::IpAddr) -> Result<Option<u32>, KernelError> {
        rtnl::route_mtu(self.route(ns)?, dst)
    }
}

impl LinuxKernel {
    fn routes(
        &mut self,
        ns: &Netns,
        dev: &str,
        routes: &[Route],
        delete: bool,
    ) -> Result<(), BatchError> {
        let whole = |e: KernelError| BatchError {
            failed: (0..routes.len()).map(|i| (i, e.clone())).collect(),
        };
        let index = match self.index(ns, dev) {
            // Routes through a link that is gone went with it.
            Err(e) if delete && e.is_errno(libc::ENODEV) => return Ok(()),
            other => other.map_err(whole)?,
        };
        let conn = self.route(ns).map_err(whole)?;
        let results = rtnl::routes(conn, index, routes, delete).map_err(whole)?;
        let failed: Vec<(usize, KernelError)> = results
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| r.err().map(|e| (i, e)))
            .filter(|(_, e)| !(delete && (e.is_errno(libc::ESRCH) || e.is_errno(libc::ENOENT))))
            .collect();
        match failed.is_empty() {
            true => Ok(()),
            false => Err(BatchError { failed }),
        }
    }
}
