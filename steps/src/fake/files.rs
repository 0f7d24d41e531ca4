//! [`crate::kernel::Files`] on the fake kernel: in memory, every call recorded and failable.

use super::{FakeKernel, EEXIST, ENOENT};
use crate::kernel::Files;
use crate::kernel::KernelError;
use crate::secret::Key;
use std::path::Path;

impl Files for FakeKernel {
    fn file_exists(&mut self, path: &Path) -> Result<bool, KernelError> {
        self.call(format!("file_exists {}", path.display()))?;
        Ok(self.state.files.contains_key(path))
    }

    fn generate_key_file(&mut self, path: &Path) -> Result<(), KernelError> {
        self.call(format!("generate_key_file {}", path.display()))?;
        if self.state.files.contains_key(path) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        self.key_counter = self.key_counter.wrapping_add(1);
        let key = Key::from_bytes([0xa0 ^ self.key_counter; 32], true);
        self.state.files.insert(path.to_path_buf(), key.to_base64());
        Ok(())
    }

    fn remove_file(&mut self, path: &Path) -> Result<(), KernelError> {
        self.call(format!("remove_file {}", path.display()))?;
        self.state
            .files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| KernelError::from_errno(ENOENT, None))
    }

    fn read_secret_file(&mut self, path: &Path) -> Result<Key, KernelError> {
        self.call(format!("read_secret_file {}", path.display()))?;
        let text = self
            .state
            .files
            .get(path)
            .ok_or_else(|| KernelError::from_errno(ENOENT, None))?;
        Key::from_base64(text, true).map_err(|e| KernelError::new(e.to_string()))
    }
}
