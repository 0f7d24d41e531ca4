//! A panic at every step of a rich up plan on the fake kernel, before the step and once its work
//! is done: the machine ends exactly as it started, the error names the step, and a panic in a
//! rollback is that rollback's failure (reported, the others still run).

mod support;
use std::sync::atomic::AtomicBool;
use support::rich::{fresh_kernel, rich};
use wg_exec::executor::{self, Watch};
use wg_exec::plan;
use wg_exec_steps::{Kernel, KernelError, Needs, Step, StepError, StepKind};

/// Panics before or after step `at`.
struct PanicAt {
    at: usize,
    after: bool,
}

impl Watch for PanicAt {
    fn before(&mut self, i: usize, _: &dyn Step, _: &mut dyn Kernel) -> Result<(), StepError> {
        if i == self.at && !self.after {
            panic!("a test's panic before the step");
        }
        Ok(())
    }
    fn after(&mut self, i: usize, _: &dyn Step, _: &mut dyn Kernel) {
        if i == self.at && self.after {
            panic!("a test's panic after the step");
        }
    }
}

#[test]
fn a_panic_at_every_step_leaves_the_machine_as_it_was() {
    let cfg = rich();
    let before = fresh_kernel().state;
    let n = plan::up(&cfg).len();
    assert!(n >= 10, "{n} steps");
    for at in 0..n {
        for after in [false, true] {
            let mut k = fresh_kernel();
            let mut steps = plan::up(&cfg);
            let name = steps[at].name();
            let err = executor::up(
                &mut steps,
                &mut k,
                &AtomicBool::new(false),
                &mut PanicAt { at, after },
            )
            .expect_err("a panic fails the up");
            let text = err.to_string();
            assert!(!err.incomplete(), "{name} (after: {after}): {text}");
            assert!(
                text.starts_with(&format!("failed at step '{name}'")),
                "{text}"
            );
            assert!(text.contains("internal error: panicked"), "{text}");
            assert_eq!(k.state, before, "{name} (after: {after}): {text}");
        }
    }
}

/// A step whose rollback panics (or fails), or whose apply fails: to drive the rollback.
struct Odd {
    kind: StepKind,
    apply_fails: bool,
    rollback_panics: bool,
}

impl Step for Odd {
    fn kind(&self) -> StepKind {
        self.kind
    }
    fn needs(&self) -> Needs {
        Needs::default()
    }
    fn describe(&self) -> String {
        "wg0".into()
    }
    fn print(&self) -> Vec<String> {
        Vec::new()
    }
    fn apply(&mut self, _: &mut dyn Kernel) -> Result<(), StepError> {
        match self.apply_fails {
            true => Err(StepError::new(
                "apply",
                KernelError::new("a test's failure"),
            )),
            false => Ok(()),
        }
    }
    fn rollback(&mut self, _: &mut dyn Kernel) -> Result<(), StepError> {
        if self.rollback_panics {
            panic!("a test's panic in a rollback");
        }
        Ok(())
    }
}

#[test]
fn a_panic_in_a_rollback_is_reported_and_the_others_still_run() {
    let odd = |kind, apply_fails, rollback_panics| -> Box<dyn Step> {
        Box::new(Odd {
            kind,
            apply_fails,
            rollback_panics,
        })
    };
    let mut steps = vec![
        odd(StepKind::LinkAdd, false, false),
        odd(StepKind::Addresses, false, true),
        odd(StepKind::PeerSet, true, false),
    ];
    let err = executor::up(
        &mut steps,
        &mut fresh_kernel(),
        &AtomicBool::new(false),
        &mut executor::NoWatch,
    )
    .expect_err("the last step fails");
    assert!(err.incomplete());
    assert_eq!(err.rolled_back, ["link add"]);
    assert_eq!(err.rollback_failures.len(), 1);
    let text = err.to_string();
    assert!(
        text.contains(
            "left behind:\n  - step 'addresses' (wg0): addresses wg0: internal error: panicked"
        ),
        "{text}"
    );
}
