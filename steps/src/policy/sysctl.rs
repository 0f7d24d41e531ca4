//! A full tunnel's step 5: `net.ipv4.conf.all.src_valid_mark=1`, put back on down when wg-exec
//! changed it.

use super::undo::undo;
use super::{FullTunnel, PolicyObject, SRC_VALID_MARK};
use crate::kernel::{Kernel, Netns};
use crate::step::{Needs, Step, StepError, StepKind, Trace};

/// 5. `net.ipv4.conf.all.src_valid_mark=1` for an IPv4 full tunnel.
pub struct SrcValidMark {
    pub tunnel: FullTunnel,
    /// The value before, when this step changed it.
    old: Option<String>,
}

impl SrcValidMark {
    pub fn new(tunnel: FullTunnel) -> SrcValidMark {
        SrcValidMark { tunnel, old: None }
    }
}

impl Step for SrcValidMark {
    fn kind(&self) -> StepKind {
        StepKind::Sysctl
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.tunnel.ns])
    }

    fn describe(&self) -> String {
        let ns = match &self.tunnel.ns {
            Netns::Current => String::new(),
            other => format!(" in {other}"),
        };
        format!("{}=1{ns}", SRC_VALID_MARK.replace('/', "."))
    }

    fn print(&self) -> Vec<String> {
        vec![format!(
            "{}sysctl -q {}=1  # only when it is not 1; put back on down",
            self.tunnel.ns.exec_prefix(),
            SRC_VALID_MARK.replace('/', ".")
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let ns = self.tunnel.ns.clone();
        let action = || format!("set {}", self.describe());
        let now = kernel
            .sysctl_get(&ns, SRC_VALID_MARK)
            .map_err(|e| StepError::new(action(), e))?;
        // Already 1 (a read-only /proc/sys in a container, another tunnel): nothing to write,
        // and nothing to put back.
        if now == "1" {
            return Ok(());
        }
        kernel
            .sysctl_set(&ns, SRC_VALID_MARK, "1")
            .map_err(|e| StepError::new(action(), e))?;
        self.old = Some(now);
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if let Some(old) = self.old.take() {
            undo(
                kernel,
                &self.tunnel.ns,
                &PolicyObject::Sysctl {
                    path: SRC_VALID_MARK.into(),
                    old,
                },
            )?;
        }
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        self.old.is_none()
    }

    fn trace(&self) -> Trace {
        Trace::Sysctl {
            ns: self.tunnel.ns.clone(),
            path: SRC_VALID_MARK.into(),
        }
    }
}
