//! The real kernel's kernel modules.

use crate::linux::{child, LinuxKernel};
use std::path::Path;
use wg_exec_steps::kernel::Modules;
use wg_exec_steps::KernelError;

impl Modules for LinuxKernel {
    fn modprobe(&mut self, module: &str) -> Result<(), KernelError> {
        let result = match Path::new("/sys/module").join(module).exists() {
            true => {
                log::debug!("module {module} is already loaded");
                Ok(())
            }
            false => child::modprobe(module),
        };
        // No later step loads a module: the capability goes with the step.
        crate::privileges::give_up(caps::Capability::CAP_SYS_MODULE);
        result
    }
}
