//! wg-exec's files in its default state directory, and the guard that removes what a test's
//! wg-exec may leave behind after a failure or SIGKILL.

use super::shell::sh;
use std::path::{Path, PathBuf};

/// Removes a userspace WireGuard's socket file (killing whoever holds it) and wg-exec's files of
/// the interface in the default state directory (journal, records, lock) if a test left them
/// behind (after a failure or SIGKILL).
pub struct SocketGuard(pub String);

/// wg-exec's default state directory (journals, records of what was applied, locks).
pub const STATE_DIR: &str = "/var/lib/wg-exec";

/// wg-exec's journal of an interface (default state directory).
pub fn journal_path(iface: &str) -> String {
    format!("{STATE_DIR}/{iface}.ron")
}

/// The records of what was applied to an interface (`IFACE.applied.json`, the next one, and any
/// other `IFACE.applied*`) in the default state directory.
pub fn applied_files(iface: &str) -> Vec<PathBuf> {
    let prefix = format!("{iface}.applied");
    std::fs::read_dir(STATE_DIR)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The next record of what was applied, written by a reload before its rename.
pub fn next_record(iface: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{iface}.applied-next.json"))
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        for f in state_files(&self.0) {
            let _ = std::fs::remove_file(Path::new(STATE_DIR).join(f));
        }
        let path = format!("/var/run/wireguard/{}.sock", self.0);
        if Path::new(&path).exists() {
            let _ = sh(&format!("fuser -k -9 {path} 2>/dev/null; rm -f {path}"));
        }
    }
}

/// wg-exec's files of an interface in the default state directory (journal, records of what
/// was applied, lock), by name.
pub fn state_files(iface: &str) -> Vec<String> {
    let prefix = format!("{iface}.");
    std::fs::read_dir(STATE_DIR)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}
