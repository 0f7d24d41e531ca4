//! Creates the private key file when `generate_private_key_file` asks for it and it is missing.

use crate::kernel::Kernel;
use crate::step::{Needs, Step, StepError, StepKind, Trace};
use std::path::PathBuf;

pub struct GenerateKeyFile {
    pub path: PathBuf,
    created: bool,
}

impl GenerateKeyFile {
    pub fn new(path: PathBuf) -> GenerateKeyFile {
        GenerateKeyFile {
            path,
            created: false,
        }
    }

    /// The step as applied by an earlier run that created the file (its rollback removes it):
    /// crash recovery from the journal.
    pub fn created(path: PathBuf) -> GenerateKeyFile {
        GenerateKeyFile {
            path,
            created: true,
        }
    }
}

impl Step for GenerateKeyFile {
    fn kind(&self) -> StepKind {
        StepKind::GenerateKeyFile
    }

    fn needs(&self) -> Needs {
        Needs::default()
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn print(&self) -> Vec<String> {
        let file = self.path.display();
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| ".".into());
        vec![format!(
            "mkdir -p -m 0755 {dir} && {{ [ -e {file} ] || (umask 077 && wg genkey > {file}); }}"
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let file = self.path.display();
        if kernel
            .file_exists(&self.path)
            .map_err(|e| StepError::new(format!("check key file {file}"), e))?
        {
            log::debug!("key file {file} exists, keeping it");
            return Ok(());
        }
        kernel
            .generate_key_file(&self.path)
            .map_err(|e| StepError::new(format!("generate key file {file}"), e))?;
        self.created = true;
        log::info!("generated private key file {file}");
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if self.created {
            kernel.remove_file(&self.path).map_err(|e| {
                StepError::new(format!("remove key file {}", self.path.display()), e)
            })?;
            self.created = false;
        }
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        !self.created
    }

    fn trace(&self) -> Trace {
        Trace::KeyFile {
            path: self.path.clone(),
        }
    }
}

/// Removes a key file that an earlier, unfinished up generated (recovery from the journal).
pub struct RemoveKeyFile {
    pub path: PathBuf,
}

impl Step for RemoveKeyFile {
    fn kind(&self) -> StepKind {
        StepKind::RemoveKeyFile
    }

    fn needs(&self) -> Needs {
        Needs::default()
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn print(&self) -> Vec<String> {
        vec![format!("rm -f {}", self.path.display())]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        match kernel.file_exists(&self.path) {
            Ok(false) => Ok(()),
            _ => GenerateKeyFile::created(self.path.clone()).rollback(kernel),
        }
    }

    /// A removed key file cannot come back; recovery is not undone.
    fn rollback(&mut self, _kernel: &mut dyn Kernel) -> Result<(), StepError> {
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeKernel;

    #[test]
    fn creates_only_when_missing_and_rolls_back_only_what_it_created() {
        let mut k = FakeKernel::new();
        let mut s = GenerateKeyFile::new("/keys/wg0.key".into());
        s.apply(&mut k).unwrap();
        assert!(k.state.files.contains_key(&PathBuf::from("/keys/wg0.key")));
        s.rollback(&mut k).unwrap();
        assert!(k.state.files.is_empty());

        k.put_key_file("/keys/wg0.key", 7);
        let before = k.state.clone();
        let mut s = GenerateKeyFile::new("/keys/wg0.key".into());
        s.apply(&mut k).unwrap();
        s.rollback(&mut k).unwrap();
        assert_eq!(
            k.state, before,
            "an existing key is never replaced or removed"
        );
    }
}
