//! Reload: addresses wg-exec added that the configuration no longer has, removed after the new
//! ones are in place.

use crate::kernel::{Kernel, Netns};
use crate::step::{object, Needs, Step, StepError, StepKind};
use ipnet::IpNet;

pub struct AddressesRemove {
    pub name: String,
    pub ns: Netns,
    pub addrs: Vec<IpNet>,
    removed: usize,
}

impl AddressesRemove {
    pub fn new(name: String, ns: Netns, addrs: Vec<IpNet>) -> AddressesRemove {
        AddressesRemove {
            name,
            ns,
            addrs,
            removed: 0,
        }
    }

    /// Adds back the first `self.removed`, newest first.
    fn restore(&mut self, kernel: &mut dyn Kernel) -> Vec<StepError> {
        let mut failures = Vec::new();
        while self.removed > 0 {
            let addr = self.addrs[self.removed - 1];
            if let Err(e) = kernel.addr_add(&self.ns, &self.name, &addr) {
                failures.push(StepError::new(
                    format!("add address {addr} back to {}", self.describe()),
                    e,
                ));
            }
            self.removed -= 1;
        }
        failures
    }
}

impl Step for AddressesRemove {
    fn kind(&self) -> StepKind {
        StepKind::AddressesRemove
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
            .map(|a| format!("{} address del {a} dev {}", self.ns.ip_prefix(), self.name))
            .collect()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        for i in 0..self.addrs.len() {
            let addr = self.addrs[i];
            if let Err(e) = kernel.addr_del(&self.ns, &self.name, &addr) {
                let err =
                    StepError::new(format!("remove address {addr} from {}", self.describe()), e);
                return Err(err.with_undo(self.restore(kernel)));
            }
            self.removed = i + 1;
        }
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        StepError::first_of(self.restore(kernel))
    }
}
