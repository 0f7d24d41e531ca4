//! Files: the key files wg-exec generates, reads and removes.

use super::{Kernel, KernelError};
use crate::secret::Key;
use std::path::{Path, PathBuf};

/// Key files.
pub trait Files {
    /// Whether a file exists (the key file of `generate_private_key_file`).
    fn file_exists(&mut self, path: &Path) -> Result<bool, KernelError>;
    /// Create a key file with a fresh private key: parent 0755 if missing, file 0600, atomic,
    /// never overwriting.
    fn generate_key_file(&mut self, path: &Path) -> Result<(), KernelError>;
    fn remove_file(&mut self, path: &Path) -> Result<(), KernelError>;
    /// Read a base64 key file into a zeroizing key.
    fn read_secret_file(&mut self, path: &Path) -> Result<Key, KernelError>;
}

/// Where a secret comes from: the configuration itself or a file read at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Inline(Key),
    File(PathBuf),
}

impl SecretSource {
    /// How `--print` shows it: the path, or `<redacted>`.
    pub fn printable(&self) -> String {
        match self {
            SecretSource::Inline(_) => "<redacted>".to_string(),
            SecretSource::File(p) => p.display().to_string(),
        }
    }

    pub fn load(&self, kernel: &mut dyn Kernel) -> Result<Key, KernelError> {
        match self {
            SecretSource::Inline(k) => Ok(k.clone()),
            SecretSource::File(p) => kernel.read_secret_file(p),
        }
    }
}
