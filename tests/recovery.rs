//! Recovery and the two down plans against the fake kernel: an up of the rich configuration
//! killed at every position (before each step, with its intent on disk, and after it) is undone
//! by the journal's recovery plan and by its down plan; the four cases before an up are decided
//! as they should be; and a fault at every call of the recovery, the journal's down and the
//! configuration's down is reported as it should be, with a second down finishing the work.

mod support;
use std::path::{Path, PathBuf};
use support::rich::{fresh_kernel, rich};
use wg_exec::commands::down;
use wg_exec::executor::{NoWatch, Watch};
use wg_exec::journal::recovery::recover;
use wg_exec::journal::transaction::settle;
use wg_exec::journal::{Journal, JournalFile, State};
use wg_exec::outcome::Outcome;
use wg_exec::plan::{self, DownSource};
use wg_exec_steps::fake::{FakeKernel, FakeState};
use wg_exec_steps::{KernelError, StepKind};

/// Where an up stopped: before step `i` with its intent recorded, or right after step `i`.
#[derive(Debug, Clone, Copy)]
enum Kill {
    Before(usize),
    After(usize),
}

/// Runs the rich up on a fresh fake kernel with the journal's checkpoint, as if killed at `at`
/// (no rollback). Returns the kernel and the journal as it is on disk.
fn killed_up(dir: &Path, at: Kill) -> (FakeKernel, Journal) {
    let cfg = rich();
    let mut k = fresh_kernel();
    let mut steps = plan::up(&cfg);
    let mut jf = JournalFile {
        path: dir.join("wg0.ron"),
        journal: Journal::for_up(&cfg),
    };
    let last = match at {
        Kill::Before(i) | Kill::After(i) => i,
    };
    for (i, step) in steps.iter_mut().enumerate().take(last + 1) {
        jf.before(i, step.as_ref(), &mut k).unwrap();
        if let Kill::Before(b) = at {
            if b == i {
                break;
            }
        }
        step.apply(&mut k).unwrap();
        jf.after(i, step.as_ref(), &mut k);
    }
    // What a killed process leaves is what reached the disk.
    jf.save().unwrap();
    let on_disk = wg_exec::journal::load(&jf.path).unwrap().unwrap();
    (k, on_disk)
}

fn positions() -> Vec<Kill> {
    let n = plan::up(&rich()).len();
    (0..n)
        .flat_map(|i| [Kill::Before(i), Kill::After(i)])
        .collect()
}

/// The fresh state, with the generated key file when it stays.
fn expected(key_stays: bool, k: &FakeKernel) -> FakeState {
    let mut want = fresh_kernel().state;
    if key_stays {
        let key = Path::new("/keys/wg0.key");
        if let Some(text) = k.state.files.get(key) {
            want.files.insert(PathBuf::from(key), text.clone());
        }
    }
    want
}

#[test]
fn recovery_undoes_an_up_killed_at_every_position() {
    let mut checked = 0;
    for at in positions() {
        let dir = tempfile::tempdir().unwrap();
        let (mut k, journal) = killed_up(dir.path(), at);
        assert_eq!(journal.state, State::Starting, "{at:?}");
        let start = k.calls.len();
        let done = recover(
            &journal,
            &mut plan::down_from_journal(&journal, false),
            &mut k,
            &mut NoWatch,
        )
        .unwrap_or_else(|f| panic!("{at:?}: recovery failed: {f:?}"));
        assert_eq!(
            k.state,
            expected(false, &k),
            "{at:?}: after recovery ({done:?})"
        );
        // Recovery runs no hook: what a hook did is not repeated or undone.
        let hooks: Vec<&String> = k.calls[start..]
            .iter()
            .filter(|c| c.starts_with("run_hook"))
            .collect();
        assert!(hooks.is_empty(), "{at:?}: {hooks:?}");
        checked += 1;
    }
    assert_eq!(checked, 2 * plan::up(&rich()).len());
}

#[test]
fn the_journals_down_plan_undoes_an_up_killed_at_every_position_and_a_complete_one() {
    for at in positions() {
        let dir = tempfile::tempdir().unwrap();
        let (mut k, journal) = killed_up(dir.path(), at);
        let path = dir.path().join("wg0.ron");
        let source = DownSource::Journal(journal);
        let outcome = down::execute(&source, source.plan(false), &mut k, &path, &mut NoWatch);
        assert_eq!(outcome, Outcome::Done, "{at:?}");
        assert_eq!(k.state, expected(false, &k), "{at:?}: after down");
        assert!(!path.exists(), "{at:?}: the journal is removed");
    }
    // A complete up: down runs the recorded hooks and keeps the generated key.
    let dir = tempfile::tempdir().unwrap();
    let last = plan::up(&rich()).len() - 1;
    let (mut k, mut journal) = killed_up(dir.path(), Kill::After(last));
    journal.state = State::Running;
    let path = dir.path().join("wg0.ron");
    let steps = plan::down_from_journal(&journal, true);
    let kinds: Vec<StepKind> = steps.iter().map(|s| s.kind()).collect();
    assert_eq!(
        kinds,
        [
            StepKind::PreShutdown,
            StepKind::Teardown,
            StepKind::PostShutdown
        ]
    );
    let source = DownSource::Journal(journal);
    let calls_before = k.calls.len();
    let outcome = down::execute(&source, steps, &mut k, &path, &mut NoWatch);
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(
        k.calls[calls_before..],
        [
            "run_hook wg0 \"echo pre-down\"",
            "link_del tunnel wg0",
            "run_hook wg0 \"echo post-down\""
        ]
    );
    assert_eq!(k.state, expected(true, &k));
}

#[test]
fn the_configurations_down_plan_finds_the_link_where_an_interrupted_up_left_it() {
    // Killed after link add, before the move: the link is still in the socket namespace.
    let dir = tempfile::tempdir().unwrap();
    let (mut k, _) = killed_up(dir.path(), Kill::After(3));
    let source = DownSource::Config(Box::new(rich()), None);
    let path = dir.path().join("none.ron");
    assert_eq!(
        down::execute(&source, source.plan(false), &mut k, &path, &mut NoWatch),
        Outcome::Done
    );
    assert!(k.state.links.is_empty());
}

/// A fault at every call of a down plan: down goes on past it; a failed teardown leaves the
/// journal for the next down (exit 3), a failed hook does not (exit 1); the next down, without
/// faults, leaves the machine as it was.
fn fault_at_every_call(make: impl Fn(&Path) -> (FakeKernel, DownSource), key_stays: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (probe, source) = make(dir.path());
    let mut probe = probe;
    let start = probe.calls.len();
    let _ = down::execute(
        &source,
        source.plan(false),
        &mut probe,
        &dir.path().join("j"),
        &mut NoWatch,
    );
    let total = probe.calls.len() - start;
    assert!(total >= 1);
    for n in 1..=total {
        let dir = tempfile::tempdir().unwrap();
        let (mut k, source) = make(dir.path());
        let journaled = matches!(source, DownSource::Journal(_));
        // The configuration's down never touches a journal: give it a path nothing is at.
        let path = dir
            .path()
            .join(if journaled { "wg0.ron" } else { "none.ron" });
        if journaled {
            std::fs::write(&path, "kept").unwrap();
        }
        let failing = k.calls.len() + n;
        k.fail_call(failing, KernelError::from_errno(16, Some("injected")));
        let outcome = down::execute(&source, source.plan(false), &mut k, &path, &mut NoWatch);
        let call = k.calls[failing - 1].clone();
        let teardown = call.starts_with("link_del");
        match (&outcome, teardown) {
            (Outcome::LeftBehind(lines), true) => {
                assert!(lines.iter().any(|l| l.contains("injected")), "{lines:?}");
                assert_eq!(path.exists(), journaled, "call {n} ({call}): journal kept");
            }
            (Outcome::HookFailed(lines), false) => {
                assert!(lines[0].contains("injected"), "{lines:?}");
                assert!(!path.exists(), "call {n} ({call}): journal removed");
            }
            // A failed key-file removal of recovery is not a teardown either.
            (other, _) => panic!("call {n} ({call}): {other:?}"),
        }
        // The next down finishes the work.
        let source = match &source {
            DownSource::Journal(j) => DownSource::Journal(j.clone()),
            DownSource::Config(c, _) => DownSource::Config(c.clone(), None),
        };
        let again = down::execute(&source, source.plan(false), &mut k, &path, &mut NoWatch);
        assert_eq!(again, Outcome::Done, "call {n}: second down");
        assert_eq!(
            k.state,
            expected(key_stays, &k),
            "call {n}: after the second down"
        );
    }
}

#[test]
fn a_fault_at_every_call_of_the_journals_down() {
    let last = plan::up(&rich()).len() - 1;
    fault_at_every_call(
        |dir| {
            let (k, mut j) = killed_up(dir, Kill::After(last));
            j.state = State::Running;
            (k, DownSource::Journal(j))
        },
        true,
    );
}

#[test]
fn a_fault_at_every_call_of_the_configurations_down() {
    let last = plan::up(&rich()).len() - 1;
    fault_at_every_call(
        |dir| {
            let (k, _) = killed_up(dir, Kill::After(last));
            (k, DownSource::Config(Box::new(rich()), None))
        },
        true,
    );
}

#[test]
fn a_fault_at_every_call_of_recovery_is_reported_and_the_next_recovery_finishes() {
    // Killed after the move: recovery deletes the link and removes the generated key.
    for at in [Kill::After(4), Kill::After(9)] {
        let dir = tempfile::tempdir().unwrap();
        let (mut probe, journal) = killed_up(dir.path(), at);
        let start = probe.calls.len();
        recover(
            &journal,
            &mut plan::down_from_journal(&journal, false),
            &mut probe,
            &mut NoWatch,
        )
        .unwrap();
        let total = probe.calls.len() - start;
        for n in 1..=total {
            let dir = tempfile::tempdir().unwrap();
            let (mut k, journal) = killed_up(dir.path(), at);
            let failing = k.calls.len() + n;
            k.fail_call(failing, KernelError::from_errno(16, Some("injected")));
            let call = |k: &FakeKernel| k.calls[failing - 1].clone();
            match recover(
                &journal,
                &mut plan::down_from_journal(&journal, false),
                &mut k,
                &mut NoWatch,
            ) {
                Err(failures) => {
                    assert!(failures[0].to_string().contains("injected"), "{failures:?}");
                    recover(
                        &journal,
                        &mut plan::down_from_journal(&journal, false),
                        &mut k,
                        &mut NoWatch,
                    )
                    .expect("the next recovery finishes");
                }
                // Only a failed look whether the key file exists is harmless: the removal
                // is tried all the same.
                Ok(_) => assert!(
                    call(&k).starts_with("file_exists"),
                    "call {n}: {}",
                    call(&k)
                ),
            }
            assert_eq!(k.state, expected(false, &k), "{at:?}, call {n}");
        }
    }
}

/// What up decides about the earlier run `j` left, recovering (when it must) with the
/// journal's own down plan, as `wg-exec up` does.
fn settle_from_journal(
    path: &Path,
    cfg: &wg_exec::config::Config,
    j: &Journal,
    k: &mut FakeKernel,
) -> Result<(), Outcome> {
    settle(
        path,
        cfg,
        Some(j.clone()),
        &mut plan::down_from_journal(j, false),
        k,
        &mut NoWatch,
    )
}

/// The four cases before an up, decided with the fake kernel.
#[test]
fn before_an_up_the_four_cases_are_decided() {
    let cfg = rich();
    let last = plan::up(&cfg).len() - 1;

    // 1. Up and its link present: refused, nothing changed.
    let dir = tempfile::tempdir().unwrap();
    let (mut k, mut j) = killed_up(dir.path(), Kill::After(last));
    j.state = State::Running;
    let path = dir.path().join("wg0.ron");
    let before = k.state.clone();
    match settle_from_journal(&path, &cfg, &j, &mut k) {
        Err(Outcome::Refused(m)) => assert!(m.contains("it is already up"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(k.state, before);
    assert!(path.exists());

    // 2. Up but its link gone (deleted by hand): start over, the journal dropped.
    k.state.links.clear();
    k.state.routes.clear();
    settle_from_journal(&path, &cfg, &j, &mut k).unwrap();
    assert!(!path.exists());

    // 3. Unfinished: rolled back first, through the executor (a failure there is exit 3).
    let dir = tempfile::tempdir().unwrap();
    let (mut k, j) = killed_up(dir.path(), Kill::After(6));
    let path = dir.path().join("wg0.ron");
    let mut failing = fresh_kernel();
    failing.state = k.state.clone();
    failing.calls = k.calls.clone();
    failing.fail_call(k.calls.len() + 1, KernelError::from_errno(16, Some("busy")));
    match settle_from_journal(&path, &cfg, &j, &mut failing) {
        Err(Outcome::LeftBehind(lines)) => {
            assert!(
                lines.last().unwrap().contains("nothing new was done"),
                "{lines:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    settle_from_journal(&path, &cfg, &j, &mut k).unwrap();
    assert_eq!(k.state, fresh_kernel().state);
    assert!(!path.exists());

    // 4. No journal, and a link of that name that is not ours: refused, left alone.
    let mut k = fresh_kernel();
    k.state.links.insert(
        (wg_exec_steps::Netns::Named("tunnel".into()), "wg0".into()),
        Default::default(),
    );
    let before = k.state.clone();
    match settle(&path, &cfg, None, &mut Vec::new(), &mut k, &mut NoWatch) {
        Err(Outcome::Refused(m)) => assert!(
            m.contains(
                "wg0 in netns tunnel already exists and wg-exec has no record of creating it"
            ),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(k.state, before);
    // And with nothing there: go on.
    let mut k = fresh_kernel();
    settle(&path, &cfg, None, &mut Vec::new(), &mut k, &mut NoWatch).unwrap();
}
