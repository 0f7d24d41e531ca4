//! Kernel modules.

use super::KernelError;

/// Kernel modules.
pub trait Modules {
    /// Load a kernel module. Callers tolerate failure, as the module does.
    fn modprobe(&mut self, module: &str) -> Result<(), KernelError>;
}
