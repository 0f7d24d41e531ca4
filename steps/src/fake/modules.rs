//! [`crate::kernel::Modules`] on the fake kernel: in memory, every call recorded and failable.

use super::FakeKernel;
use crate::kernel::KernelError;
use crate::kernel::Modules;

impl Modules for FakeKernel {
    fn modprobe(&mut self, module: &str) -> Result<(), KernelError> {
        self.call(format!("modprobe {module}"))
    }
}
