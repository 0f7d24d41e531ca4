//! The real kernel's key files.

use crate::linux::{keyfile, LinuxKernel};
use std::path::Path;
use wg_exec_steps::kernel::Files;
use wg_exec_steps::{KernelError, Key};
use zeroize::Zeroize;

impl Files for LinuxKernel {
    fn file_exists(&mut self, path: &Path) -> Result<bool, KernelError> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(KernelError::from_io(&e)),
        }
    }

    fn generate_key_file(&mut self, path: &Path) -> Result<(), KernelError> {
        keyfile::write_key_file(path)
    }

    fn remove_file(&mut self, path: &Path) -> Result<(), KernelError> {
        std::fs::remove_file(path).map_err(|e| KernelError::from_io(&e))
    }

    fn read_secret_file(&mut self, path: &Path) -> Result<Key, KernelError> {
        let mut text = std::fs::read_to_string(path).map_err(|e| KernelError::from_io(&e))?;
        let key = Key::from_base64(&text, true);
        text.zeroize();
        key.map_err(|e| KernelError::new(format!("not a WireGuard key: {e}")))
    }
}
