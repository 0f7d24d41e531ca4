//! Brings the link up once it has its MTU, addresses and key, as the module does before peers.

use crate::kernel::{Kernel, Netns};
use crate::step::{object, Needs, Step, StepError, StepKind};

pub struct LinkUp {
    pub name: String,
    pub ns: Netns,
}

impl Step for LinkUp {
    fn kind(&self) -> StepKind {
        StepKind::LinkUp
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        vec![format!(
            "{} link set dev {} up",
            self.ns.ip_prefix(),
            self.name
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        kernel
            .link_set_up(&self.ns, &self.name, true)
            .map_err(|e| StepError::new(format!("set {} up", self.describe()), e))
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        kernel
            .link_set_up(&self.ns, &self.name, false)
            .map_err(|e| StepError::new(format!("set {} down", self.describe()), e))
    }
}
