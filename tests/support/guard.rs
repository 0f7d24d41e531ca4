//! Guards that remove what a test's wg-exec may leave behind after a failure or SIGKILL.

use super::shell::sh;
use std::path::Path;

/// Removes a userspace WireGuard's socket file and wg-exec's journal and records if a test left
/// them behind (after a failure or SIGKILL).
pub struct SocketGuard(pub String);

/// wg-exec's default state directory (journals, records of what was applied, locks).
pub const STATE_DIR: &str = "/var/lib/wg-exec";

/// wg-exec's journal of an interface (default state directory).
pub fn journal_path(iface: &str) -> String {
    format!("{STATE_DIR}/{iface}.ron")
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(journal_path(&self.0));
        for record in ["applied", "applied-next"] {
            let _ = std::fs::remove_file(format!("{STATE_DIR}/{}.{record}.ron", self.0));
        }
        let path = format!("/var/run/wireguard/{}.sock", self.0);
        if Path::new(&path).exists() {
            let _ = sh(&format!("fuser -k -9 {path} 2>/dev/null; rm -f {path}"));
        }
    }
}
