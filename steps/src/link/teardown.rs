//! Takes the interface down for good: deletes the link. Every route wg-exec installs goes through
//! the link (`dev NAME`), and the kernel removes those with it, as it does the addresses and the
//! peers, so one request undoes them all; a userspace implementation exits when its link goes.

use crate::kernel::{Kernel, Netns};
use crate::step::{object, Needs, Step, StepError, StepKind};

pub struct Teardown {
    pub name: String,
    /// Where the link should be: the interface namespace, else the socket namespace.
    pub ns: Netns,
    /// Where it was created, if different: an up that stopped between link add and netns move
    /// leaves it there.
    pub created_in: Option<Netns>,
}

impl Step for Teardown {
    fn kind(&self) -> StepKind {
        StepKind::Teardown
    }

    fn needs(&self) -> Needs {
        Needs::namespaces(std::iter::once(&self.ns).chain(self.created_in.as_ref()))
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        vec![format!(
            "{} link del dev {}",
            self.ns.ip_prefix(),
            self.name
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        const ENODEV: i32 = 19;
        let places = std::iter::once(&self.ns).chain(self.created_in.as_ref());
        for ns in places {
            match kernel.link_del(ns, &self.name) {
                Ok(()) => {
                    log::info!("deleted {}", object(&self.name, ns));
                    return Ok(());
                }
                Err(e) if e.is_errno(ENODEV) => continue,
                Err(e) => {
                    return Err(StepError::new(
                        format!("delete {}", object(&self.name, ns)),
                        e,
                    ))
                }
            }
        }
        log::info!("{} does not exist: nothing to delete", self.describe());
        Ok(())
    }

    /// Down is not undone.
    fn rollback(&mut self, _kernel: &mut dyn Kernel) -> Result<(), StepError> {
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        true
    }
}
