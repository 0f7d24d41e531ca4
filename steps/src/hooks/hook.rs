//! The four user hooks (pre_setup, post_setup, pre_shutdown, post_shutdown). The lines of a hook
//! form one script run with `bash -e` (the real kernel hands the text over as a file, never in
//! argv), so that it stops at its first failing line as the module's generated script does.
//! Hooks are the administrator's code: they run with what the unit grants wg-exec.

use crate::kernel::Kernel;
use crate::step::{Needs, Step, StepError, StepKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    PreSetup,
    PostSetup,
    PreShutdown,
    PostShutdown,
}

impl Phase {
    pub fn kind(self) -> StepKind {
        match self {
            Phase::PreSetup => StepKind::PreSetup,
            Phase::PostSetup => StepKind::PostSetup,
            Phase::PreShutdown => StepKind::PreShutdown,
            Phase::PostShutdown => StepKind::PostShutdown,
        }
    }

    pub fn name(self) -> &'static str {
        self.kind().name()
    }
}

pub struct Hook {
    pub phase: Phase,
    pub device: String,
    pub lines: Vec<String>,
}

impl Step for Hook {
    fn kind(&self) -> StepKind {
        self.phase.kind()
    }

    /// Hooks run in the namespace wg-exec was started in, with what wg-exec was given.
    fn needs(&self) -> Needs {
        Needs {
            hooks: true,
            ..Needs::default()
        }
    }

    fn describe(&self) -> String {
        format!("hook for {}", self.device)
    }

    fn print(&self) -> Vec<String> {
        self.lines.clone()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let script = self.lines.join("\n");
        kernel
            .run_hook(&self.device, &script)
            .map_err(|e| StepError::new(format!("run {} hook", self.phase.name()), e))
    }

    /// What a hook did is the hook's own business; the module has no undo for it either.
    fn rollback(&mut self, _kernel: &mut dyn Kernel) -> Result<(), StepError> {
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        true
    }
}
