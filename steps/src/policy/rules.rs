//! A full tunnel's step 2: the suppress rule and the fwmark rule of each family, at fixed
//! priorities.

use super::undo::undo_all;
use super::{
    rules, table_of, FullTunnel, PolicyObject, EAFNOSUPPORT, EEXIST, FWMARK_PRIORITY,
    SUPPRESS_PRIORITY,
};
use crate::kernel::{Kernel, KernelError, PolicyRule};
use crate::produced::Produced;
use crate::step::{Needs, Step, StepError, StepKind, Trace};

/// 2. The rules.
pub struct PolicyRules {
    pub tunnel: FullTunnel,
    /// The full tunnel's table, once the step that chooses it ran.
    pub table: Option<u32>,
    added: Vec<PolicyRule>,
}

impl PolicyRules {
    pub fn new(tunnel: FullTunnel) -> PolicyRules {
        PolicyRules {
            tunnel,
            table: None,
            added: Vec::new(),
        }
    }
}

impl Step for PolicyRules {
    fn kind(&self) -> StepKind {
        StepKind::Rules
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.tunnel.ns])
    }

    /// The table [`super::ChooseTable`] chose, handed on by the executor.
    fn takes(&mut self, earlier: &[Produced]) {
        self.table = Produced::full_tunnel_table(earlier.iter().copied());
    }

    fn describe(&self) -> String {
        let n = self.tunnel.rule_families().len() * 2;
        format!("{n} rules for {}", self.tunnel.describe())
    }

    fn print(&self) -> Vec<String> {
        let t = self.tunnel.printed_table();
        let ip = self.tunnel.ns.ip_prefix();
        self.tunnel
            .rule_families()
            .into_iter()
            .flat_map(|v6| {
                let f = if v6 { "-6" } else { "-4" };
                [
                    format!("{ip} {f} rule add priority {SUPPRESS_PRIORITY} table main suppress_prefixlength 0"),
                    format!("{ip} {f} rule add priority {FWMARK_PRIORITY} not fwmark {t} table {t}"),
                ]
            })
            .collect()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let t = table_of(self.table)?;
        let ns = self.tunnel.ns.clone();
        let want = rules(&self.tunnel, t);
        // A rule of anyone's at our priorities would make down's exact delete ambiguous, and
        // ours land beside it in an order nobody chose: refuse before adding any.
        let existing = kernel
            .rule_list(&ns)
            .map_err(|e| StepError::new(format!("list the routing rules in {ns}"), e))?;
        if let Some(r) = existing.iter().find(|r| {
            want.iter()
                .any(|w| w.v6 == r.v6 && w.priority == r.priority)
        }) {
            return Err(StepError::new(
                format!("add the full tunnel's rules for {}", self.tunnel.describe()),
                KernelError {
                    errno: Some(EEXIST),
                    message: format!(
                        "priority {} is taken by another rule ({}{}); wg-exec's full tunnel uses {SUPPRESS_PRIORITY} and {FWMARK_PRIORITY} (is another full tunnel up?)",
                        r.priority,
                        r,
                        if r.other { " with more selectors" } else { "" }
                    ),
                },
            ));
        }
        let leak_only_v6 = !self.tunnel.v6;
        for rule in want {
            match kernel.rule_add(&ns, &rule) {
                // IPv6 only for leak protection, on a kernel without IPv6: nothing can leak.
                Err(e) if rule.v6 && leak_only_v6 && e.is_errno(EAFNOSUPPORT) => {
                    log::info!(
                        "{ns} has no IPv6 policy routing ({e}): no IPv6 leak protection needed"
                    );
                    continue;
                }
                Err(e) => {
                    let undo = undo_all(
                        kernel,
                        &ns,
                        &self
                            .added
                            .drain(..)
                            .map(PolicyObject::Rule)
                            .collect::<Vec<_>>(),
                    );
                    return Err(StepError::new(format!("add {rule} in {ns}"), e).with_undo(undo));
                }
                Ok(()) => self.added.push(rule),
            }
        }
        log::info!("added {}", self.describe());
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let objects: Vec<PolicyObject> = self.added.drain(..).map(PolicyObject::Rule).collect();
        StepError::first_of(undo_all(kernel, &self.tunnel.ns, &objects))
    }

    fn rollback_is_noop(&self) -> bool {
        self.added.is_empty()
    }

    /// Before the step, the rules it is about to add; after it, those it added.
    fn trace(&self) -> Trace {
        let rules = match (self.table, self.added.is_empty()) {
            (Some(t), true) => rules(&self.tunnel, t),
            (Some(_), false) => self.added.clone(),
            (None, _) => return Trace::None,
        };
        Trace::Policy {
            ns: self.tunnel.ns.clone(),
            objects: rules.into_iter().map(PolicyObject::Rule).collect(),
        }
    }
}
