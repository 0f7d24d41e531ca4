//! The real kernel's sysctls under /proc/sys.

use crate::linux::LinuxKernel;
use std::path::Path;
use wg_exec_steps::kernel::Sysctl;
use wg_exec_steps::{KernelError, Netns};

impl Sysctl for LinuxKernel {
    fn sysctl_get(&mut self, ns: &Netns, path: &str) -> Result<String, KernelError> {
        // /proc/sys/net is the namespace of the thread that opens it.
        let _inside = self.enter(ns)?;
        std::fs::read_to_string(Path::new("/proc/sys").join(path))
            .map(|v| v.trim().to_string())
            .map_err(|e| KernelError::from_io(&e))
    }

    fn sysctl_set(&mut self, ns: &Netns, path: &str, value: &str) -> Result<(), KernelError> {
        let _inside = self.enter(ns)?;
        std::fs::write(Path::new("/proc/sys").join(path), value)
            .map_err(|e| KernelError::from_io(&e))
    }
}
