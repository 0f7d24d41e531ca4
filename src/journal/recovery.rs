//! Recovery of an up that did not finish (killed, or its rollback incomplete): the journal's
//! down plan without hooks (made by the plan wing, src/plan/down.rs), run by the
//! executor like any other plan, so that it is reported, signalled and fault-injected the same
//! way.

use super::Journal;
use crate::executor::{self, Failure, Watch};
use wg_exec_steps::{Kernel, Step};

/// Undoes what `journal` says was (or may have been) done, through `steps`, its down plan
/// without hooks. Ok lists what was undone (for the message); Err lists what failed, and then
/// something may be left.
pub fn recover(
    journal: &Journal,
    steps: &mut [Box<dyn Step>],
    kernel: &mut dyn Kernel,
    watch: &mut dyn Watch,
) -> Result<Vec<String>, Vec<Failure>> {
    expect_userspace(journal, kernel);
    let failures = executor::down(steps, kernel, watch);
    match failures.is_empty() {
        true => Ok(steps
            .iter()
            .map(|s| format!("{} {}", s.name(), s.describe()))
            .collect()),
        false => Err(failures),
    }
}

/// Tells the kernel which processes served the journal's links.
pub fn expect_userspace(journal: &Journal, kernel: &mut dyn Kernel) {
    for r in &journal.records {
        if let super::What::Link {
            name,
            userspace_pids,
            ..
        } = &r.what
        {
            kernel.expect_userspace(name, userspace_pids);
        }
    }
}

/// Whether a link the journal created still exists where the journal last put it (an
/// unreachable namespace counts as present: better refuse than start over blindly).
pub fn link_present(journal: &Journal, kernel: &mut dyn Kernel) -> bool {
    journal
        .links()
        .iter()
        .any(|(name, _, now)| kernel.link_exists(now, name).unwrap_or(true))
}
