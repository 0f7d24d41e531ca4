//! The real kernel's hook scripts.

use crate::linux::{child, LinuxKernel};
use wg_exec_steps::kernel::Hooks;
use wg_exec_steps::KernelError;

impl Hooks for LinuxKernel {
    fn run_hook(&mut self, device: &str, script: &str) -> Result<(), KernelError> {
        child::hook(device, script)
    }
}
