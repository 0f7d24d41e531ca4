//! [`crate::kernel::Sysctl`] on the fake kernel: in memory, every call recorded and failable.

use super::{label, FakeKernel};
use crate::kernel::Sysctl;
use crate::kernel::{KernelError, Netns};

impl Sysctl for FakeKernel {
    fn sysctl_get(&mut self, ns: &Netns, path: &str) -> Result<String, KernelError> {
        self.call(format!("sysctl_get {} {path}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self
            .state
            .sysctls
            .get(&(ns.clone(), path.to_string()))
            .cloned()
            .unwrap_or_else(|| "0".into()))
    }

    fn sysctl_set(&mut self, ns: &Netns, path: &str, value: &str) -> Result<(), KernelError> {
        self.call(format!("sysctl_set {} {path} {value}", label(ns)))?;
        self.check_ns(ns)?;
        let key = (ns.clone(), path.to_string());
        match value {
            "0" => self.state.sysctls.remove(&key),
            v => self.state.sysctls.insert(key, v.to_string()),
        };
        Ok(())
    }
}
