//! Creates the WireGuard link in the socket namespace, where its UDP socket will live for good.

use crate::kernel::{Backend, Kernel, Netns};
use crate::step::{object, Needs, Step, StepError, StepKind, Trace};

pub struct LinkAdd {
    pub name: String,
    pub ns: Netns,
    pub backend: Backend,
    /// The listen port the device will be given: a userspace program started here binds it
    /// with the capabilities it inherits.
    pub listen_port: Option<u16>,
}

impl Step for LinkAdd {
    fn kind(&self) -> StepKind {
        StepKind::LinkAdd
    }

    fn needs(&self) -> Needs {
        Needs {
            low_port: self.listen_port.is_some_and(|p| p > 0 && p < 1024)
                && !matches!(self.backend, Backend::Kernel),
            ..Needs::namespaces([&self.ns])
        }
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        let kernel = format!(
            "{} link add dev {} type wireguard",
            self.ns.ip_prefix(),
            self.name
        );
        let user = |program: &str| format!("{}{program} {}", self.ns.exec_prefix(), self.name);
        vec![match &self.backend {
            Backend::Kernel => kernel,
            Backend::Userspace { program } => user(program),
            Backend::Auto { userspace } => format!("{kernel} || {}", user(userspace)),
        }]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        kernel
            .link_add(&self.ns, &self.name, &self.backend)
            .map_err(|e| StepError::new(format!("create {}", self.describe()), e))?;
        log::info!("created {}", self.describe());
        Ok(())
    }

    /// Deletes the link; one that is already gone (a later rollback deleted it) is fine.
    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        const ENODEV: i32 = 19;
        match kernel.link_del(&self.ns, &self.name) {
            Err(e) if e.is_errno(ENODEV) => Ok(()),
            other => other.map_err(|e| StepError::new(format!("delete {}", self.describe()), e)),
        }
    }

    fn trace(&self) -> Trace {
        Trace::Link {
            name: self.name.clone(),
            ns: self.ns.clone(),
        }
    }
}
