//! Keys made by `wg` in a private directory, and other files a configuration names.

use super::shell::must;
use std::path::PathBuf;

/// Keys made by `wg`, in a private directory.
pub struct Keys {
    pub dir: tempfile::TempDir,
}

impl Keys {
    /// In /var/tmp, so that a unit user's private /tmp (PrivateTmp=, see `as_unit_user`) does
    /// not hide it.
    pub fn new() -> Keys {
        let dir = tempfile::Builder::new()
            .prefix("wg-exec-test-")
            .tempdir_in("/var/tmp")
            .unwrap();
        Keys { dir }
    }

    /// Writes a private key file NAME.key (0600) and returns (path, public key).
    pub fn private(&self, name: &str) -> (PathBuf, String) {
        let path = self.dir.path().join(format!("{name}.key"));
        must(&format!("umask 077; wg genkey > {}", path.display()));
        let public = must(&format!("wg pubkey < {}", path.display()))
            .trim()
            .to_string();
        (path, public)
    }

    /// Writes a preshared key file NAME.psk (0600) and returns its path and text.
    pub fn psk(&self, name: &str) -> (PathBuf, String) {
        let path = self.dir.path().join(format!("{name}.psk"));
        must(&format!("umask 077; wg genpsk > {}", path.display()));
        let text = std::fs::read_to_string(&path).unwrap().trim().to_string();
        (path, text)
    }

    pub fn write(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    }
}
