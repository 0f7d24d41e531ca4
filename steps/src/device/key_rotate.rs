//! Reload: a new private key, applied last. It ends every peer's current session (each peer
//! must already know the new public key), so the plan warns about it.

use crate::kernel::{DeviceSettings, Kernel, Netns, SecretSource};
use crate::secret::Key;
use crate::step::{object, Needs, Step, StepError, StepKind};

pub struct KeyRotate {
    pub name: String,
    pub ns: Netns,
    pub new: SecretSource,
    /// The key the device had (read back), to restore; None when the implementation does not
    /// report it (boringtun-cli): then the rotation cannot be undone.
    pub old: Option<Key>,
}

impl Step for KeyRotate {
    fn kind(&self) -> StepKind {
        StepKind::KeyRotate
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        vec![format!(
            "{}wg set {} private-key {}",
            self.ns.exec_prefix(),
            self.name,
            self.new.printable()
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let action = || format!("set the new private key of {}", self.describe());
        let key = self
            .new
            .load(kernel)
            .map_err(|e| StepError::new(action(), e))?;
        let settings = DeviceSettings {
            private_key: Some(key),
            ..DeviceSettings::default()
        };
        kernel
            .wg_set_device(&self.ns, &self.name, &settings)
            .map_err(|e| StepError::new(action(), e))
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let action = format!("restore the previous private key of {}", self.describe());
        let Some(old) = self.old.clone() else {
            return Err(StepError::new(
                action,
                crate::KernelError::new("the implementation did not report it"),
            ));
        };
        let settings = DeviceSettings {
            private_key: Some(old),
            ..DeviceSettings::default()
        };
        kernel
            .wg_set_device(&self.ns, &self.name, &settings)
            .map_err(|e| StepError::new(action, e))
    }
}
