//! Test-build switches (cargo feature `fault-injection`, never in a release build): make a step
//! fail, or pause before or after a step so that a test can signal or kill wg-exec exactly
//! there, or panic at a step (the executor must still roll back and exit 1). Read from
//! WG_EXEC_FAULT=STEP, panic:STEP or panic-after:STEP, and WG_EXEC_PAUSE=STEP or after:STEP.

use crate::executor::Watch;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wg_exec_steps::{Kernel, KernelError, Step, StepError, StepKind};

/// Where a test pauses: before or after steps of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pause {
    Before(StepKind),
    After(StepKind),
}

#[derive(Default)]
pub struct Faults {
    fault: Option<StepKind>,
    /// Panic before the step is applied, or once it is (its work done).
    panic: Option<Pause>,
    pause: Option<Pause>,
    interrupted: Arc<AtomicBool>,
}

impl Faults {
    #[cfg(feature = "fault-injection")]
    pub fn from_env(interrupted: Arc<AtomicBool>) -> Faults {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        // A name that is no step's would silently test nothing: refuse it loudly.
        let kind = |k: &str, name: &str| {
            StepKind::from_name(name).unwrap_or_else(|| panic!("{k}={name}: no step has this name"))
        };
        let fault = var("WG_EXEC_FAULT");
        let panic = fault.as_deref().and_then(|v| {
            if let Some(name) = v.strip_prefix("panic:") {
                return Some(Pause::Before(kind("WG_EXEC_FAULT", name)));
            }
            let name = v.strip_prefix("panic-after:")?;
            Some(Pause::After(kind("WG_EXEC_FAULT", name)))
        });
        Faults {
            fault: match panic {
                Some(_) => None,
                None => fault.map(|v| kind("WG_EXEC_FAULT", &v)),
            },
            panic,
            pause: var("WG_EXEC_PAUSE").map(|v| match v.strip_prefix("after:") {
                Some(name) => Pause::After(kind("WG_EXEC_PAUSE", name)),
                None => Pause::Before(kind("WG_EXEC_PAUSE", &v)),
            }),
            interrupted,
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    pub fn from_env(interrupted: Arc<AtomicBool>) -> Faults {
        Faults {
            interrupted,
            ..Faults::default()
        }
    }

    /// Sleeps (up to a minute) until a signal arrives; the test kills or signals us here.
    fn pause(&self, at: &str) {
        eprintln!("wg-exec: test pause {at} (pid {})", std::process::id());
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until && !self.interrupted.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn before(&self, step: &dyn Step) -> Result<(), StepError> {
        if self.pause == Some(Pause::Before(step.kind())) {
            self.pause(&format!("before {}", step.name()));
        }
        if self.panic == Some(Pause::Before(step.kind())) {
            panic!("injected panic (WG_EXEC_FAULT=panic:STEP)");
        }
        if self.fault == Some(step.kind()) {
            return Err(StepError::new(
                format!("{} {}", step.name(), step.describe()),
                KernelError::new("injected fault (WG_EXEC_FAULT)"),
            ));
        }
        Ok(())
    }

    fn after(&self, step: &dyn Step) {
        if self.pause == Some(Pause::After(step.kind())) {
            self.pause(&format!("after {}", step.name()));
        }
        if self.panic == Some(Pause::After(step.kind())) {
            panic!("injected panic (WG_EXEC_FAULT=panic-after:STEP)");
        }
    }
}

/// The journal (when there is one) and the test switches around each step.
pub struct Watched<'a, J: Watch> {
    pub journal: Option<&'a mut J>,
    pub faults: Faults,
}

impl<J: Watch> Watch for Watched<'_, J> {
    fn before(&mut self, i: usize, step: &dyn Step, k: &mut dyn Kernel) -> Result<(), StepError> {
        if let Some(j) = self.journal.as_mut() {
            j.before(i, step, k)?;
        }
        self.faults.before(step)
    }

    fn after(&mut self, i: usize, step: &dyn Step, k: &mut dyn Kernel) {
        self.faults.after(step);
        if let Some(j) = self.journal.as_mut() {
            j.after(i, step, k);
        }
    }

    fn undone(&mut self, i: usize, step: &dyn Step) {
        if let Some(j) = self.journal.as_mut() {
            j.undone(i, step);
        }
    }
}
