//! Down and recovery: what the journal says a full tunnel made, removed newest first.

use super::undo::undo_all;
use super::PolicyObject;
use crate::kernel::{Kernel, Netns};
use crate::step::{join_human, Needs, Step, StepError, StepKind};

/// Down and recovery: removes what the journal says a full tunnel made, newest first. Each
/// object is tried; what is already gone is fine, so it can run again after a failure.
pub struct RemovePolicy {
    pub ns: Netns,
    pub objects: Vec<PolicyObject>,
}

impl Step for RemovePolicy {
    fn kind(&self) -> StepKind {
        StepKind::PolicyTeardown
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self.objects.iter().map(|o| o.to_string()).collect();
        let ns = match &self.ns {
            Netns::Current => String::new(),
            other => format!(" in {other}"),
        };
        format!("{}{ns}", join_human(&names))
    }

    fn print(&self) -> Vec<String> {
        let ip = self.ns.ip_prefix();
        let ex = self.ns.exec_prefix();
        self.objects
            .iter()
            .rev()
            .map(|o| match o {
                PolicyObject::Rule(r) => {
                    let r = r.to_string();
                    let (fam, rest) = r.split_at(3);
                    format!("{ip} {fam}{}", rest.replacen("rule ", "rule del ", 1))
                }
                PolicyObject::Unreachable { dst, table } => {
                    format!("{ip} route del unreachable {dst} table {table}")
                }
                PolicyObject::Nft(t) => format!("{ex}nft delete table {t}"),
                PolicyObject::Sysctl { path, old } => format!(
                    "{ex}sysctl -q {}={old}  # only if wg-exec changed it and it is still 1",
                    path.replace('/', ".")
                ),
            })
            .collect()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        StepError::first_of(undo_all(kernel, &self.ns, &self.objects))
    }

    fn rollback(&mut self, _kernel: &mut dyn Kernel) -> Result<(), StepError> {
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        true
    }
}
