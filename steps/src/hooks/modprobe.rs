//! Loads the wireguard module. Failure is tolerated, as the module's `modprobe wireguard || true`:
//! the link add step tells the truth about whether the kernel has WireGuard.

use crate::kernel::Kernel;
use crate::step::{Needs, Step, StepError, StepKind};

pub struct Modprobe {
    pub module: String,
}

impl Step for Modprobe {
    fn kind(&self) -> StepKind {
        StepKind::Modprobe
    }

    fn needs(&self) -> Needs {
        Needs {
            module: true,
            ..Needs::default()
        }
    }

    fn describe(&self) -> String {
        self.module.clone()
    }

    fn print(&self) -> Vec<String> {
        vec![format!("modprobe {} || true", self.module)]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        match kernel.modprobe(&self.module) {
            Ok(()) => log::info!("module {} is loaded", self.module),
            Err(e) => log::info!("modprobe {} failed ({e}); going on", self.module),
        }
        Ok(())
    }

    /// A loaded module is left loaded: other interfaces may use it, and unloading is not ours.
    fn rollback(&mut self, _kernel: &mut dyn Kernel) -> Result<(), StepError> {
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        true
    }
}
