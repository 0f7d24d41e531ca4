//! The real kernel's addresses (rtnetlink).

use crate::linux::{rtnl, LinuxKernel};
use ipnet::IpNet;
use wg_exec_steps::kernel::Addresses;
use wg_exec_steps::{KernelError, Netns};

impl Addresses for LinuxKernel {
    fn addr_add(&mut self, ns: &Netns, name: &str, addr: &IpNet) -> Result<(), KernelError> {
        let index = self.index(ns, name)?;
        rtnl::add_address(self.route(ns)?, index, addr)
    }

    fn addr_del(&mut self, ns: &Netns, name: &str, addr: &IpNet) -> Result<(), KernelError> {
        let index = self.index(ns, name)?;
        rtnl::del_address(self.route(ns)?, index, addr)
    }

    fn addr_list(&mut self, ns: &Netns, name: &str) -> Result<Vec<IpNet>, KernelError> {
        let index = self.index(ns, name)?;
        rtnl::addresses(self.route(ns)?, index)
    }
}
