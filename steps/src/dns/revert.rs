//! Down: the link's DNS settings reverted.

use super::revert;
use crate::kernel::{DnsBackend, Kernel, Netns};
use crate::step::{object, Needs, Step, StepError, StepKind};

/// Reverts the link's DNS settings (down, and recovery of an unfinished up): through the
/// backend the journal recorded, else whichever is available now (none: nothing to revert).
/// Both backends' reverts are idempotent and succeed when the link is gone.
pub struct DnsRevert {
    pub name: String,
    pub ns: Netns,
    pub backend: Option<DnsBackend>,
}

impl Step for DnsRevert {
    fn kind(&self) -> StepKind {
        StepKind::Dns
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        match self.backend {
            Some(DnsBackend::Resolvconf) => vec![format!("resolvconf -d {} -f", self.name)],
            Some(DnsBackend::Resolved) => vec![format!("resolvectl revert {}", self.name)],
            None => vec![
                format!("resolvectl revert {}", self.name),
                format!("# without systemd-resolved: resolvconf -d {} -f", self.name),
            ],
        }
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let Some(backend) = self.backend.or_else(|| kernel.dns_available()) else {
            log::info!(
                "{}: neither systemd-resolved nor resolvconf is available: no DNS settings to revert",
                self.name
            );
            return Ok(());
        };
        revert(kernel, backend, &self.ns, &self.name)
    }

    /// Down is not undone.
    fn rollback(&mut self, _kernel: &mut dyn Kernel) -> Result<(), StepError> {
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        true
    }
}
