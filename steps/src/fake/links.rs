//! [`crate::kernel::Links`] on the fake kernel: in memory, every call recorded and failable.

use super::{label, FakeKernel, FakeLink, EEXIST};
use crate::kernel::Links;
use crate::kernel::{Backend, KernelError, LinkState, Netns};
use std::collections::BTreeMap;
use std::collections::BTreeSet;

impl Links for FakeKernel {
    fn link_add(&mut self, ns: &Netns, name: &str, backend: &Backend) -> Result<(), KernelError> {
        let kind = match backend {
            Backend::Kernel => "kernel",
            Backend::Userspace { .. } => "userspace",
            Backend::Auto { .. } => "auto",
        };
        self.call(format!("link_add {} {name} {kind}", label(ns)))?;
        self.check_ns(ns)?;
        let userspace = match backend {
            Backend::Kernel if !self.has_wireguard => {
                return Err(KernelError::from_errno(95, Some("Unknown device type")))
            }
            Backend::Kernel => false,
            Backend::Userspace { .. } => true,
            Backend::Auto { .. } => !self.has_wireguard,
        };
        let key = (ns.clone(), name.to_string());
        if self.state.links.contains_key(&key) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        let link = FakeLink {
            mtu: 1420,
            up: false,
            addrs: BTreeSet::new(),
            private_key: None,
            listen_port: 0,
            fwmark: 0,
            peers: BTreeMap::new(),
            userspace,
        };
        self.state.links.insert(key, link);
        Ok(())
    }

    fn link_del(&mut self, ns: &Netns, name: &str) -> Result<(), KernelError> {
        self.call(format!("link_del {} {name}", label(ns)))?;
        self.link(ns, name)?;
        self.state.links.remove(&(ns.clone(), name.to_string()));
        self.state
            .routes
            .retain(|(rns, dev, _)| !(rns == ns && dev == name));
        Ok(())
    }

    fn link_exists(&mut self, ns: &Netns, name: &str) -> Result<bool, KernelError> {
        self.call(format!("link_exists {} {name}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self
            .state
            .links
            .contains_key(&(ns.clone(), name.to_string())))
    }

    fn link_index(&mut self, ns: &Netns, name: &str) -> Result<u32, KernelError> {
        self.call(format!("link_index {} {name}", label(ns)))?;
        self.link(ns, name)?;
        Ok(7)
    }

    fn userspace_pids(&mut self, _name: &str) -> Vec<i32> {
        Vec::new()
    }

    fn link_set_netns(&mut self, ns: &Netns, name: &str, to: &Netns) -> Result<(), KernelError> {
        self.call(format!("link_set_netns {} {name} {}", label(ns), label(to)))?;
        self.check_ns(to)?;
        let mut link = self.link(ns, name)?.clone();
        let target = (to.clone(), name.to_string());
        if self.state.links.contains_key(&target) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        // As in Linux: a link that changes namespace loses its addresses and routes.
        link.addrs.clear();
        self.state.links.remove(&(ns.clone(), name.to_string()));
        self.state
            .routes
            .retain(|(rns, dev, _)| !(rns == ns && dev == name));
        self.state.links.insert(target, link);
        Ok(())
    }

    fn link_mtu(&mut self, ns: &Netns, name: &str) -> Result<u32, KernelError> {
        self.call(format!("link_mtu {} {name}", label(ns)))?;
        Ok(self.link(ns, name)?.mtu)
    }

    fn link_set_mtu(&mut self, ns: &Netns, name: &str, mtu: u32) -> Result<(), KernelError> {
        self.call(format!("link_set_mtu {} {name} {mtu}", label(ns)))?;
        self.link(ns, name)?.mtu = mtu;
        Ok(())
    }

    fn link_set_up(&mut self, ns: &Netns, name: &str, up: bool) -> Result<(), KernelError> {
        let word = if up { "up" } else { "down" };
        self.call(format!("link_set_up {} {name} {word}", label(ns)))?;
        self.link(ns, name)?.up = up;
        Ok(())
    }

    fn link_state(&mut self, ns: &Netns, name: &str) -> Result<Option<LinkState>, KernelError> {
        self.call(format!("link_state {} {name}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self
            .state
            .links
            .get(&(ns.clone(), name.to_string()))
            .map(|l| LinkState {
                index: 7,
                mtu: l.mtu,
                up: l.up,
            }))
    }
}
