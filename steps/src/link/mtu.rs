//! Sets the link's MTU before addresses are added, so that IPv6 (which needs 1280) sees the final
//! value.

use crate::kernel::{Kernel, Netns};
use crate::step::{object, Needs, Step, StepError, StepKind};

/// Puts back the MTU a step replaced (`previous`, when it replaced one): the rollback of `Mtu`
/// and of the full tunnel's `AutoMtu`.
pub(crate) fn restore(
    kernel: &mut dyn Kernel,
    ns: &Netns,
    name: &str,
    previous: Option<u32>,
) -> Result<(), StepError> {
    if let Some(previous) = previous {
        kernel.link_set_mtu(ns, name, previous).map_err(|e| {
            StepError::new(format!("restore mtu {previous} on {}", object(name, ns)), e)
        })?;
    }
    Ok(())
}

pub struct Mtu {
    pub name: String,
    pub ns: Netns,
    pub mtu: u32,
    previous: Option<u32>,
}

impl Mtu {
    pub fn new(name: String, ns: Netns, mtu: u32) -> Mtu {
        Mtu {
            name,
            ns,
            mtu,
            previous: None,
        }
    }
}

impl Step for Mtu {
    fn kind(&self) -> StepKind {
        StepKind::Mtu
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        vec![format!(
            "{} link set dev {} mtu {}",
            self.ns.ip_prefix(),
            self.name,
            self.mtu
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let action = || format!("set mtu {} on {}", self.mtu, self.describe());
        let previous = kernel
            .link_mtu(&self.ns, &self.name)
            .map_err(|e| StepError::new(action(), e))?;
        kernel
            .link_set_mtu(&self.ns, &self.name, self.mtu)
            .map_err(|e| StepError::new(action(), e))?;
        self.previous = Some(previous);
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        restore(kernel, &self.ns, &self.name, self.previous.take())
    }
}
