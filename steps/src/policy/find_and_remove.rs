//! Down without a journal: what a full tunnel of this interface made, found by its shape and
//! removed.

use super::firewall::nft_table_name;
use super::undo::undo_all;
use super::{
    fwmark_rule, v6_default, PolicyObject, ENOENT, FWMARK_PRIORITY, RT_TABLE_MAIN,
    SUPPRESS_PRIORITY,
};
use crate::kernel::{Kernel, Netns, PolicyRule};
use crate::step::{join_human, object, Needs, Step, StepError, StepKind};

/// A full tunnel's fwmark rule, as up adds it: "not fwmark T lookup T" at its priority.
fn is_fwmark_rule(r: &PolicyRule) -> bool {
    !r.other
        && r.priority == FWMARK_PRIORITY
        && r.invert
        && r.fwmark == Some(r.table)
        && r.suppress_prefixlength.is_none()
}

/// Down without a journal (an up by an older wg-exec, a journal set aside as unusable): what
/// a full tunnel of this interface would have made is found by its fixed shape (the rules at
/// wg-exec's two priorities, the unreachable `::/0` in their table, the firewall tables named
/// after the interface) and removed. The sysctl's old value is not known: it is left.
pub struct FindAndRemovePolicy {
    pub name: String,
    pub ns: Netns,
}

impl FindAndRemovePolicy {
    fn find(&self, kernel: &mut dyn Kernel) -> Result<Vec<PolicyObject>, StepError> {
        let ns = &self.ns;
        let mut out: Vec<PolicyObject> = Vec::new();
        // Only what the live link's fwmark names is this interface's (another interface's full
        // tunnel has the same shape at the same priorities, with its own mark): wg-quick's
        // del_if follows the live device the same way.
        let mark = match kernel.link_exists(ns, &self.name) {
            Ok(true) => match kernel.wg_get(ns, &self.name) {
                Ok(dev) => Some(dev.fwmark).filter(|m| *m != 0),
                Err(e) => {
                    log::warn!(
                        "{}: cannot read its fwmark ({e}); looking for what a full tunnel left by its shape",
                        object(&self.name, ns)
                    );
                    None
                }
            },
            Ok(false) => None,
            Err(e) if e.is_errno(ENOENT) => None,
            Err(e) => {
                return Err(StepError::new(
                    format!("look for {}", object(&self.name, ns)),
                    e,
                ))
            }
        };
        let rules = kernel
            .rule_list(ns)
            .map_err(|e| StepError::new(format!("list the routing rules in {ns}"), e))?;
        // The tables whose full tunnel rules go: the live mark's; without it (no link, or an
        // unreadable one), a table that no route through a device uses any more. up allows
        // one full tunnel per namespace (the fixed priorities), so such rules are an orphan's.
        let mut tables: Vec<u32> = Vec::new();
        match mark {
            Some(t) => tables.push(t),
            None => {
                for r in rules.iter().filter(|r| is_fwmark_rule(r)) {
                    let routes = kernel.table_routes(ns, r.table).map_err(|e| {
                        StepError::new(format!("list the routes of table {} in {ns}", r.table), e)
                    })?;
                    if routes.iter().all(|(_, unreachable)| *unreachable)
                        && !tables.contains(&r.table)
                    {
                        tables.push(r.table);
                    }
                }
            }
        }
        for t in tables {
            let mut found = false;
            for v6 in [false, true] {
                let mine = fwmark_rule(v6, t);
                if !rules.contains(&mine) {
                    continue;
                }
                found = true;
                // Its suppress rule goes with it (first, as up added it first).
                let suppress = PolicyRule {
                    v6,
                    priority: SUPPRESS_PRIORITY,
                    table: RT_TABLE_MAIN,
                    fwmark: None,
                    invert: false,
                    suppress_prefixlength: Some(0),
                    other: false,
                };
                if rules.contains(&suppress) {
                    out.push(PolicyObject::Rule(suppress));
                }
                out.push(PolicyObject::Rule(mine));
            }
            if found {
                out.push(PolicyObject::Unreachable {
                    dst: v6_default(),
                    table: t,
                });
            }
        }
        let name = nft_table_name(&self.name);
        let tables = kernel
            .nft_tables(ns)
            .map_err(|e| StepError::new(format!("list nftables tables in {ns}"), e))?;
        out.extend(
            tables
                .into_iter()
                .filter(|t| t.name == name && (t.family == "ip" || t.family == "ip6"))
                .map(PolicyObject::Nft),
        );
        Ok(out)
    }
}

impl Step for FindAndRemovePolicy {
    fn kind(&self) -> StepKind {
        StepKind::PolicyTeardown
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        format!(
            "the rules at priorities {SUPPRESS_PRIORITY} and {FWMARK_PRIORITY} and the nftables tables wg-exec-{} of a full tunnel, if any, {}",
            self.name,
            match &self.ns {
                Netns::Current => "here".to_string(),
                other => format!("in {other}"),
            }
        )
    }

    fn print(&self) -> Vec<String> {
        vec![format!(
            "# delete {} (the journal is missing)",
            self.describe()
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let found = self.find(kernel)?;
        if !found.is_empty() {
            let names: Vec<String> = found.iter().map(|o| o.to_string()).collect();
            log::warn!(
                "{}: no journal; removing what a full tunnel left: {}",
                self.name,
                join_human(&names)
            );
        }
        StepError::first_of(undo_all(kernel, &self.ns, &found))
    }

    fn rollback(&mut self, _kernel: &mut dyn Kernel) -> Result<(), StepError> {
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        true
    }
}
