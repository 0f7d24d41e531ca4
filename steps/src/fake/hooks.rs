//! [`crate::kernel::Hooks`] on the fake kernel: in memory, every call recorded and failable.

use super::FakeKernel;
use crate::kernel::Hooks;
use crate::kernel::KernelError;

impl Hooks for FakeKernel {
    fn run_hook(&mut self, device: &str, script: &str) -> Result<(), KernelError> {
        self.call(format!("run_hook {device} {script:?}"))
    }
}
