//! Runs a plan as a transaction. Up: on the first failure (or a signal between steps) every
//! applied step is rolled back in reverse. Down: every step runs, failures are collected.
//!
//! A panic in a step (a bug, say on a reply no one foresaw) is caught here and is that step's
//! failure: once its apply began, the step may have done part of its work, so it is rolled back
//! with the others (should its rollback fail on what was never made, that is reported as left
//! behind: the journal keeps it for `down`); the command exits 1, or 3 when the rollback is
//! incomplete, never 101 with half an interface.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use wg_exec_steps::join_human;
use wg_exec_steps::{Kernel, KernelError, Produced, Step, StepError, StepKind};

/// Where the last panic happened, as [`install_panic_hook`]'s hook recorded it.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the default panic message (which prints the payload: a formatted payload may hold
/// what was being parsed, a key included) by the place of the panic, and records it for the
/// error that names the step. A payload is shown only when it is a literal (`&'static str`),
/// which cannot hold input.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let mut text = match info.location() {
            Some(l) => format!("panicked at {l}"),
            None => "panicked".to_string(),
        };
        if let Some(s) = info.payload().downcast_ref::<&'static str>() {
            text = format!("{text}: {s}");
        }
        log::error!("internal error: {text}");
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(text);
        }
    }));
}

/// What a caught panic says: the place the hook recorded (else the literal payload, if any).
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    let recorded = LAST_PANIC.lock().ok().and_then(|mut l| l.take());
    match (recorded, payload.downcast_ref::<&'static str>()) {
        (Some(text), _) => format!("internal error: {text}"),
        (None, Some(s)) => format!("internal error: panicked: {s}"),
        (None, None) => "internal error: panicked".to_string(),
    }
}

/// A panic in `step` as its error.
fn panicked(step: &dyn Step, payload: &(dyn Any + Send)) -> StepError {
    StepError::new(
        format!("{} {}", step.name(), step.describe()),
        KernelError::new(panic_text(payload)),
    )
}

/// A step that failed: its kind, its object and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub step: StepKind,
    pub object: String,
    pub error: StepError,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step '{}' ({}): {}", self.step, self.object, self.error)?;
        for u in &self.error.undo_failures {
            write!(f, "; and undoing its own work failed: {u}")?;
        }
        Ok(())
    }
}

/// Why an up did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    Step(Failure),
    /// A signal arrived; it is honoured between steps.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpError {
    pub cause: Cause,
    /// Steps rolled back that had something to undo, in the order they were undone ("route",
    /// "peer set", …).
    pub rolled_back: Vec<String>,
    pub rollback_failures: Vec<Failure>,
}

impl UpError {
    /// True when the machine is not back where it started.
    pub fn incomplete(&self) -> bool {
        let partial = match &self.cause {
            Cause::Step(f) => !f.error.undo_failures.is_empty(),
            Cause::Interrupted => false,
        };
        partial || !self.rollback_failures.is_empty()
    }
}

impl fmt::Display for UpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Step(fail) => write!(f, "failed at {fail}")?,
            Cause::Interrupted => write!(f, "interrupted by a signal")?,
        }
        match self.rolled_back.is_empty() {
            true => write!(f, "; nothing had been changed yet")?,
            false => write!(f, "; rolled back: {}", join_human(&self.rolled_back))?,
        }
        if !self.rollback_failures.is_empty() {
            write!(f, "; ROLLBACK INCOMPLETE, left behind:")?;
            for r in &self.rollback_failures {
                write!(f, "\n  - {r}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for UpError {}

/// Hooks around each step: the journal records intent and result through them, and test
/// builds inject faults and pauses.
pub trait Watch {
    /// Before step `i` is applied. An error fails the step before it starts.
    fn before(
        &mut self,
        _i: usize,
        _step: &dyn Step,
        _k: &mut dyn Kernel,
    ) -> Result<(), StepError> {
        Ok(())
    }
    /// After step `i` was applied.
    fn after(&mut self, _i: usize, _step: &dyn Step, _k: &mut dyn Kernel) {}
    /// After step `i` failed (its own partial work undone) or was rolled back.
    fn undone(&mut self, _i: usize, _step: &dyn Step) {}
}

/// No journal, no faults: for `--print`-like uses and unit tests.
pub struct NoWatch;

impl Watch for NoWatch {}

/// Applies `plan` in order; on failure or interruption undoes what was applied, newest first.
pub fn up(
    plan: &mut [Box<dyn Step>],
    kernel: &mut dyn Kernel,
    interrupted: &AtomicBool,
    watch: &mut dyn Watch,
) -> Result<(), Box<UpError>> {
    let mut applied = 0;
    let mut cause = None;
    // What the steps applied so far chose (the full tunnel's table), for the steps after them.
    let mut produced: Vec<Produced> = Vec::new();
    for (i, step) in plan.iter_mut().enumerate() {
        if interrupted.load(Ordering::SeqCst) {
            cause = Some(Cause::Interrupted);
            break;
        }
        log::debug!("{}: {}", step.name(), step.describe());
        let started = std::time::Instant::now();
        // Whether the step's apply began: a panic before it (in the journal's or a test's hook)
        // leaves nothing of this step to undo.
        let mut began = false;
        let result = catch_unwind(AssertUnwindSafe(|| {
            // Before the journal records the step's trace, which may name what it takes.
            step.takes(&produced);
            watch.before(i, step.as_ref(), kernel)?;
            began = true;
            step.apply(kernel)?;
            watch.after(i, step.as_ref(), kernel);
            Ok::<(), StepError>(())
        }));
        match result {
            Ok(Ok(())) => {
                log::debug!("{} took {:.1?}", step.name(), started.elapsed());
                produced.extend(step.produced());
                applied += 1
            }
            Ok(Err(error)) => {
                // Undone only when the step's own cleanup of its partial work succeeded: else
                // the journal keeps the record, for down to finish.
                if error.undo_failures.is_empty() {
                    watch.undone(i, step.as_ref());
                }
                log::error!("step '{}' failed: {error}", step.name());
                cause = Some(Cause::Step(Failure {
                    step: step.kind(),
                    object: step.describe(),
                    error,
                }));
                break;
            }
            Err(payload) => {
                let error = panicked(step.as_ref(), payload.as_ref());
                log::error!("step '{}' failed: {error}", step.name());
                cause = Some(Cause::Step(Failure {
                    step: step.kind(),
                    object: step.describe(),
                    error,
                }));
                // Part of its work may be done: rolled back with the steps before it.
                if began {
                    applied += 1;
                } else {
                    watch.undone(i, step.as_ref());
                }
                break;
            }
        }
    }
    // A signal during the last step: the step finished, now undo everything.
    if cause.is_none() && interrupted.load(Ordering::SeqCst) {
        cause = Some(Cause::Interrupted);
    }
    let Some(cause) = cause else {
        return Ok(());
    };
    let (rolled_back, rollback_failures) = rollback(&mut plan[..applied], kernel, watch);
    Err(Box::new(UpError {
        cause,
        rolled_back,
        rollback_failures,
    }))
}

/// Rolls back applied steps in reverse, going on past failures.
pub fn rollback(
    applied: &mut [Box<dyn Step>],
    kernel: &mut dyn Kernel,
    watch: &mut dyn Watch,
) -> (Vec<String>, Vec<Failure>) {
    let mut done = Vec::new();
    let mut failures = Vec::new();
    for (i, step) in applied.iter_mut().enumerate().rev() {
        log::debug!("rolling back {}: {}", step.name(), step.describe());
        let noop = step.rollback_is_noop();
        let result = catch_unwind(AssertUnwindSafe(|| step.rollback(kernel)))
            .unwrap_or_else(|payload| Err(panicked(step.as_ref(), payload.as_ref())));
        match result {
            Ok(()) => {
                watch.undone(i, step.as_ref());
                if !noop {
                    done.push(step.name().to_string())
                }
            }
            Err(error) => {
                log::error!("rollback of step '{}' failed: {error}", step.name());
                failures.push(Failure {
                    step: step.kind(),
                    object: step.describe(),
                    error,
                });
            }
        }
    }
    (done, failures)
}

/// Runs every step of a down plan, collecting failures instead of stopping.
pub fn down(
    plan: &mut [Box<dyn Step>],
    kernel: &mut dyn Kernel,
    watch: &mut dyn Watch,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    let mut produced: Vec<Produced> = Vec::new();
    for (i, step) in plan.iter_mut().enumerate() {
        log::debug!("{}: {}", step.name(), step.describe());
        step.takes(&produced);
        let result = catch_unwind(AssertUnwindSafe(|| {
            watch
                .before(i, step.as_ref(), kernel)
                .and_then(|()| step.apply(kernel))
        }))
        .unwrap_or_else(|payload| Err(panicked(step.as_ref(), payload.as_ref())));
        if result.is_ok() {
            produced.extend(step.produced());
        }
        if let Err(error) = result {
            log::error!("step '{}' failed: {error}; going on", step.name());
            failures.push(Failure {
                step: step.kind(),
                object: step.describe(),
                error,
            });
        }
    }
    failures
}

/// `--print`: every step's commands, one per line.
pub fn print(plan: &[Box<dyn Step>]) -> String {
    let mut out = String::new();
    for step in plan {
        for line in step.print() {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use wg_exec_steps::fake::FakeKernel;
    use wg_exec_steps::kernel::prelude::*;
    use wg_exec_steps::{
        Backend, ChooseTable, DefaultRoutes, Firewall, FullTunnel, Netns, PolicyRules, Route,
    };

    fn tunnel() -> FullTunnel {
        FullTunnel {
            name: "wg0".into(),
            ns: Netns::Current,
            v4: true,
            v6: false,
            ipv6_leak_protection: true,
            fwmark: None,
            addresses: vec!["192.0.2.2/32".parse().unwrap()],
        }
    }

    fn plan() -> Vec<Box<dyn Step>> {
        vec![
            Box::new(ChooseTable::new(tunnel())),
            Box::new(PolicyRules::new(tunnel())),
            Box::new(DefaultRoutes::new(tunnel())),
            Box::new(Firewall::new(tunnel())),
        ]
    }

    /// A kernel with link wg0 where table 51820 is taken, so the chosen table is 51821.
    fn kernel() -> FakeKernel {
        let mut k = FakeKernel::new();
        k.link_add(&Netns::Current, "wg0", &Backend::Kernel)
            .unwrap();
        k.state.routes.insert((
            Netns::Current,
            "eth0".into(),
            Route::new("198.51.100.0/24".parse().unwrap(), 51820, None),
        ));
        k
    }

    #[test]
    fn the_chosen_table_flows_to_the_later_steps_and_out_typed() {
        let mut k = kernel();
        let mut steps = plan();
        up(&mut steps, &mut k, &AtomicBool::new(false), &mut NoWatch).unwrap();
        let produced: Vec<Produced> = steps.iter().filter_map(|s| s.produced()).collect();
        assert_eq!(produced, [Produced::FullTunnelTable(51821)]);
        assert_eq!(Produced::full_tunnel_table(produced), Some(51821));
        // The later steps used it: the fwmark rule, the default route and the unreachable ::/0.
        let tables: BTreeSet<u32> = k
            .state
            .rules
            .iter()
            .filter_map(|(_, r)| r.fwmark.map(|m| (m, r.table)))
            .map(|(m, t)| {
                assert_eq!(m, t, "the fwmark is the table");
                t
            })
            .collect();
        assert_eq!(tables, [51821].into());
        assert!(k
            .state
            .routes
            .iter()
            .any(|(_, dev, r)| dev == "wg0" && r.table == 51821 && r.dst.prefix_len() == 0));
        assert!(k
            .state
            .unreachable
            .iter()
            .any(|(_, dst, t)| *t == 51821 && dst.prefix_len() == 0));
        assert_eq!(k.state.links[&(Netns::Current, "wg0".into())].fwmark, 51821);
    }

    #[test]
    fn a_step_that_takes_nothing_refuses_and_a_rolled_back_choice_produces_nothing() {
        let mut k = kernel();
        // Without the choosing step before it, the rules step has no table: an error, not a guess.
        let mut rules = PolicyRules::new(tunnel());
        rules.takes(&[]);
        let err = rules.apply(&mut k).unwrap_err();
        assert!(err.to_string().contains("has not chosen one"), "{err}");
        assert!(k.state.rules.is_empty());
        // A failure after the choice rolls it back: nothing is produced any more.
        let mut steps = plan();
        let calls = {
            let mut probe = kernel();
            let mut s = plan();
            up(&mut s, &mut probe, &AtomicBool::new(false), &mut NoWatch).unwrap();
            probe.calls.len()
        };
        k = kernel();
        k.fail_call(calls, KernelError::new("injected"));
        up(&mut steps, &mut k, &AtomicBool::new(false), &mut NoWatch).unwrap_err();
        assert!(steps.iter().all(|s| s.produced().is_none()));
        assert!(k.state.rules.is_empty());
        assert_eq!(k.state.links[&(Netns::Current, "wg0".into())].fwmark, 0);
    }
}
