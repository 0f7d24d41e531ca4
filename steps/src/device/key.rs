//! Gives the device its private key, listen port and fwmark. It comes after the addresses and
//! before the link goes up and before any peer, as `wg set NAME private-key …` does in the module.

use crate::kernel::{DeviceSettings, Kernel, Netns, SecretSource};
use crate::step::{object, Needs, Step, StepError, StepKind};

pub struct DeviceKey {
    pub name: String,
    pub ns: Netns,
    pub private_key: SecretSource,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
    applied: bool,
}

impl DeviceKey {
    pub fn new(
        name: String,
        ns: Netns,
        private_key: SecretSource,
        listen_port: Option<u16>,
        fwmark: Option<u32>,
    ) -> DeviceKey {
        DeviceKey {
            name,
            ns,
            private_key,
            listen_port,
            fwmark,
            applied: false,
        }
    }
}

impl Step for DeviceKey {
    fn kind(&self) -> StepKind {
        StepKind::Key
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        let mut line = format!(
            "{}wg set {} private-key {}",
            self.ns.exec_prefix(),
            self.name,
            self.private_key.printable()
        );
        if let Some(port) = self.listen_port {
            line.push_str(&format!(" listen-port {port}"));
        }
        if let Some(mark) = self.fwmark {
            line.push_str(&format!(" fwmark 0x{mark:x}"));
        }
        vec![line]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let action = || {
            format!(
                "set private key, listen port and fwmark of {}",
                self.describe()
            )
        };
        let key = self.private_key.load(kernel).map_err(|e| {
            StepError::new(
                format!("read private key {}", self.private_key.printable()),
                e,
            )
        })?;
        let settings = DeviceSettings {
            private_key: Some(key),
            listen_port: self.listen_port,
            fwmark: self.fwmark,
        };
        kernel
            .wg_set_device(&self.ns, &self.name, &settings)
            .map_err(|e| StepError::new(action(), e))?;
        self.applied = true;
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if self.applied {
            kernel.wg_clear_device(&self.ns, &self.name).map_err(|e| {
                StepError::new(format!("clear private key of {}", self.describe()), e)
            })?;
            self.applied = false;
        }
        Ok(())
    }
}
