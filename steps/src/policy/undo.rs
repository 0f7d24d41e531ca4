//! The undo engine of a full tunnel: each object a full tunnel leaves beyond the link is undone
//! by what it is, and only when it is still exactly wg-exec's.

use super::{PolicyObject, EAFNOSUPPORT, ENOENT, ESRCH};
use crate::kernel::{Kernel, KernelError, Netns, PolicyRule};
use crate::step::StepError;

/// Undoes one object; what is already gone is not an error.
pub fn undo(kernel: &mut dyn Kernel, ns: &Netns, o: &PolicyObject) -> Result<(), StepError> {
    // What never came to be on a kernel without IPv6 is gone too.
    let gone =
        |e: &KernelError| e.is_errno(ENOENT) || e.is_errno(ESRCH) || e.is_errno(EAFNOSUPPORT);
    let in_ns = match ns {
        Netns::Current => String::new(),
        other => format!(" in {other}"),
    };
    match o {
        PolicyObject::Rule(r) => match kernel.rule_list(ns) {
            Ok(rules) => undo_rule(kernel, ns, r, &rules),
            Err(e) if gone(&e) => Ok(()),
            Err(e) => Err(StepError::new(format!("list the rules{in_ns}"), e)),
        },
        PolicyObject::Unreachable { dst, table } => {
            match kernel.route_unreachable(ns, dst, *table, false) {
                Err(e) if !gone(&e) => Err(StepError::new(
                    format!("delete route unreachable {dst} table {table}{in_ns}"),
                    e,
                )),
                _ => Ok(()),
            }
        }
        PolicyObject::Nft(t) => {
            let tables = kernel
                .nft_tables(ns)
                .map_err(|e| StepError::new(format!("list nftables tables{in_ns}"), e))?;
            if !tables.contains(t) {
                return Ok(());
            }
            kernel
                .nft_apply(ns, &format!("delete table {t}\n"))
                .map_err(|e| StepError::new(format!("delete nftables table {t}{in_ns}"), e))
        }
        PolicyObject::Sysctl { path, old } => {
            if old == "1" {
                return Ok(());
            }
            let action = || format!("restore {}={old}{in_ns}", path.replace('/', "."));
            let now = kernel
                .sysctl_get(ns, path)
                .map_err(|e| StepError::new(action(), e))?;
            // Only what wg-exec set: a value someone changed since is theirs.
            if now != "1" {
                return Ok(());
            }
            kernel
                .sysctl_set(ns, path, old)
                .map_err(|e| StepError::new(action(), e))
        }
    }
}

/// Deletes rule `r` when a rule equal to it in every field is among `rules` (the kernel's delete
/// compares only some fields: not the invert flag, nor selectors the request leaves out), so
/// that another tool's rule at the same priority is never taken.
fn undo_rule(
    kernel: &mut dyn Kernel,
    ns: &Netns,
    r: &PolicyRule,
    rules: &[PolicyRule],
) -> Result<(), StepError> {
    let in_ns = match ns {
        Netns::Current => String::new(),
        other => format!(" in {other}"),
    };
    if !rules.contains(r) {
        let alike = PolicyRule {
            other: true,
            ..r.clone()
        };
        if rules.contains(&alike) {
            log::warn!(
                "a rule like {r}{in_ns} is there with more selectors than wg-exec adds: not wg-exec's, left"
            );
        }
        return Ok(());
    }
    match kernel.rule_del(ns, r) {
        Err(e) if !(e.is_errno(ENOENT) || e.is_errno(EAFNOSUPPORT)) => {
            Err(StepError::new(format!("delete {r}{in_ns}"), e))
        }
        _ => Ok(()),
    }
}

/// Undoes objects in reverse order, collecting failures (each is tried). The rules are listed
/// once: deleting one of ours changes nothing about the others.
pub(super) fn undo_all(
    kernel: &mut dyn Kernel,
    ns: &Netns,
    objects: &[PolicyObject],
) -> Vec<StepError> {
    let mut rules: Option<Vec<PolicyRule>> = None;
    let mut failures = Vec::new();
    for o in objects.iter().rev() {
        let result = match (o, &rules) {
            (PolicyObject::Rule(r), Some(listed)) => undo_rule(kernel, ns, r, listed),
            (PolicyObject::Rule(r), None) => match kernel.rule_list(ns) {
                Ok(listed) => {
                    let result = undo_rule(kernel, ns, r, &listed);
                    rules = Some(listed);
                    result
                }
                // Listing failed: as `undo` says it, one rule at a time.
                Err(_) => undo(kernel, ns, o),
            },
            _ => undo(kernel, ns, o),
        };
        failures.extend(result.err());
    }
    failures
}
