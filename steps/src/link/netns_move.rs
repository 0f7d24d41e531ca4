//! Moves the link from the socket namespace to the interface namespace. Its UDP socket stays
//! behind, which is the point of the two options.

use crate::kernel::{Kernel, Netns};
use crate::step::{object, Needs, Step, StepError, StepKind, Trace};

pub struct NetnsMove {
    pub name: String,
    pub from: Netns,
    pub to: Netns,
}

impl Step for NetnsMove {
    fn kind(&self) -> StepKind {
        StepKind::NetnsMove
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.from, &self.to])
    }

    fn describe(&self) -> String {
        format!("{} to {}", object(&self.name, &self.from), self.to)
    }

    fn print(&self) -> Vec<String> {
        let target = match &self.to {
            Netns::Named(n) => n.clone(),
            // PID 1's namespace, as `ip link set … netns 1` names it.
            Netns::Init | Netns::Current => "1".to_string(),
        };
        vec![format!(
            "{} link set dev {} netns {target}",
            self.from.ip_prefix(),
            self.name
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        kernel
            .link_set_netns(&self.from, &self.name, &self.to)
            .map_err(|e| StepError::new(format!("move {}", self.describe()), e))
    }

    /// Moves the link back; if that is refused, deletes it where it is, which undoes this step
    /// and the link add before it alike (that step then finds nothing left to delete).
    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let back = match kernel.link_set_netns(&self.to, &self.name, &self.from) {
            Ok(()) => return Ok(()),
            Err(e) => StepError::new(
                format!(
                    "move {} back to {}",
                    object(&self.name, &self.to),
                    self.from
                ),
                e,
            ),
        };
        log::warn!("{back}; deleting the link where it is instead");
        kernel.link_del(&self.to, &self.name).map_err(|e| {
            back.with_undo(vec![StepError::new(
                format!("delete {}", object(&self.name, &self.to)),
                e,
            )])
        })
    }

    fn trace(&self) -> Trace {
        Trace::Move {
            name: self.name.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }
}
