//! Reload: a new listen port or fwmark on the live device, sent only when it differs from what
//! the device has (wireguard-go rebinds its socket on every listen port it is sent).

use crate::kernel::{DeviceSettings, Kernel, Netns};
use crate::step::{object, Needs, Step, StepError, StepKind};

pub struct DeviceSet {
    pub name: String,
    pub ns: Netns,
    /// (as it is, as it is to be)
    pub listen_port: Option<(u16, u16)>,
    pub fwmark: Option<(u32, u32)>,
}

impl DeviceSet {
    fn settings(&self, new: bool) -> DeviceSettings {
        let pick = |(old, now): (u32, u32)| if new { now } else { old };
        DeviceSettings {
            private_key: None,
            listen_port: self.listen_port.map(|(o, n)| if new { n } else { o }),
            fwmark: self.fwmark.map(pick),
        }
    }
}

impl Step for DeviceSet {
    fn kind(&self) -> StepKind {
        StepKind::DeviceSet
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        let mut line = format!("{}wg set {}", self.ns.exec_prefix(), self.name);
        if let Some((_, p)) = self.listen_port {
            line.push_str(&format!(" listen-port {p}"));
        }
        if let Some((_, m)) = self.fwmark {
            line.push_str(&format!(" fwmark 0x{m:x}"));
        }
        vec![line]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let Err(e) = kernel.wg_set_device(&self.ns, &self.name, &self.settings(true)) else {
            return Ok(());
        };
        let err = StepError::new(self.print()[0].clone(), e);
        // The kernel sets the fwmark before it binds the port (wg_set_device in the kernel's
        // netlink.c): a port that is taken fails the request with the new fwmark already set.
        // Both are put back as they were.
        if self.fwmark.is_none() {
            return Err(err);
        }
        let undo = match kernel.wg_set_device(&self.ns, &self.name, &self.settings(false)) {
            Ok(()) => vec![],
            Err(e) => vec![StepError::new(
                format!("restore listen port and fwmark of {}", self.describe()),
                e,
            )],
        };
        Err(err.with_undo(undo))
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        kernel
            .wg_set_device(&self.ns, &self.name, &self.settings(false))
            .map_err(|e| {
                StepError::new(
                    format!("restore listen port and fwmark of {}", self.describe()),
                    e,
                )
            })
    }
}
