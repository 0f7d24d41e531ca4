//! Adds the interface's addresses (after the MTU, before the key and before going up).

use crate::kernel::{Kernel, Netns};
use crate::step::{object, Needs, Step, StepError, StepKind, Trace};
use ipnet::IpNet;

pub struct Addresses {
    pub name: String,
    pub ns: Netns,
    pub addrs: Vec<IpNet>,
    added: usize,
}

impl Addresses {
    pub fn new(name: String, ns: Netns, addrs: Vec<IpNet>) -> Addresses {
        Addresses {
            name,
            ns,
            addrs,
            added: 0,
        }
    }

    /// Removes the first `self.added` addresses, newest first; returns what could not be removed.
    fn remove_added(&mut self, kernel: &mut dyn Kernel) -> Vec<StepError> {
        let mut failures = Vec::new();
        while self.added > 0 {
            let addr = self.addrs[self.added - 1];
            // EADDRNOTAVAIL: already gone (IPv6 addresses leave when the link goes down).
            const EADDRNOTAVAIL: i32 = 99;
            let result = kernel.addr_del(&self.ns, &self.name, &addr);
            if let Err(e) = result.filter_gone(EADDRNOTAVAIL) {
                failures.push(StepError::new(
                    format!("remove address {addr} from {}", self.describe()),
                    e,
                ));
            }
            self.added -= 1;
        }
        failures
    }
}

impl Step for Addresses {
    fn kind(&self) -> StepKind {
        StepKind::Addresses
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        self.addrs
            .iter()
            .map(|a| format!("{} address add {a} dev {}", self.ns.ip_prefix(), self.name))
            .collect()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        for i in 0..self.addrs.len() {
            let addr = self.addrs[i];
            if let Err(e) = kernel.addr_add(&self.ns, &self.name, &addr) {
                let err = StepError::new(format!("add address {addr} to {}", self.describe()), e);
                return Err(err.with_undo(self.remove_added(kernel)));
            }
            self.added = i + 1;
        }
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        StepError::first_of(self.remove_added(kernel))
    }

    fn trace(&self) -> Trace {
        Trace::Addresses {
            ns: self.ns.clone(),
            addrs: self.addrs.clone(),
        }
    }
}

trait FilterGone {
    fn filter_gone(self, errno: i32) -> Self;
}

impl FilterGone for Result<(), crate::KernelError> {
    fn filter_gone(self, errno: i32) -> Self {
        match self {
            Err(e) if e.is_errno(errno) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeKernel;
    use crate::kernel::prelude::*;
    use crate::Backend;

    #[test]
    fn half_way_failure_removes_what_it_added() {
        let mut k = FakeKernel::new();
        k.link_add(&Netns::Current, "wg0", &Backend::Kernel)
            .unwrap();
        let before = k.state.clone();
        let addrs = vec![
            "192.0.2.1/24".parse().unwrap(),
            "2001:db8::1/64".parse().unwrap(),
        ];
        let mut s = Addresses::new("wg0".into(), Netns::Current, addrs);
        k.fail_call(k.calls.len() + 2, libc_eexist());
        let err = s.apply(&mut k).unwrap_err();
        assert_eq!(
            err.to_string(),
            "add address 2001:db8::1/64 to wg0: File exists (os error 17)"
        );
        assert_eq!(k.state, before);
        assert_eq!(
            &k.calls[k.calls.len() - 3..],
            [
                "addr_add current wg0 192.0.2.1/24",
                "addr_add current wg0 2001:db8::1/64",
                "addr_del current wg0 192.0.2.1/24"
            ]
        );
    }

    fn libc_eexist() -> crate::KernelError {
        crate::KernelError::from_errno(17, None)
    }
}
