//! The configuration's hook scripts.

use super::KernelError;

/// Hook scripts.
pub trait Hooks {
    /// Run a hook script with /bin/sh, DEVICE set, in a minimal environment.
    fn run_hook(&mut self, device: &str, script: &str) -> Result<(), KernelError>;
}
