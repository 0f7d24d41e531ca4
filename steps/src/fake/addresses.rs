//! [`crate::kernel::Addresses`] on the fake kernel: in memory, every call recorded and failable.

use super::{label, FakeKernel, EEXIST};
use crate::kernel::Addresses;
use crate::kernel::{KernelError, Netns};
use ipnet::IpNet;

impl Addresses for FakeKernel {
    fn addr_add(&mut self, ns: &Netns, name: &str, addr: &IpNet) -> Result<(), KernelError> {
        self.call(format!("addr_add {} {name} {addr}", label(ns)))?;
        if !self.link(ns, name)?.addrs.insert(*addr) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        Ok(())
    }

    fn addr_del(&mut self, ns: &Netns, name: &str, addr: &IpNet) -> Result<(), KernelError> {
        self.call(format!("addr_del {} {name} {addr}", label(ns)))?;
        if !self.link(ns, name)?.addrs.remove(addr) {
            return Err(KernelError::from_errno(99, None));
        }
        Ok(())
    }

    fn addr_list(&mut self, ns: &Netns, name: &str) -> Result<Vec<IpNet>, KernelError> {
        self.call(format!("addr_list {} {name}", label(ns)))?;
        Ok(self.link(ns, name)?.addrs.iter().copied().collect())
    }
}
