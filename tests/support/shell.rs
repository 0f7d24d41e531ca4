//! Shell commands, unique names, and the output as text.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A short unique suffix: pid and a counter.
pub fn unique() -> String {
    format!(
        "{}{}",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A unique interface name ("w" + up to 8 digits + a letter), at most 15 bytes.
pub fn iface(tag: &str) -> String {
    let name = format!("w{}{tag}", unique());
    assert!(name.len() <= 15, "{name}");
    name
}

pub fn sh(cmd: &str) -> Output {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run /bin/sh")
}

/// Runs a shell command that must succeed; returns its stdout.
pub fn must(cmd: &str) -> String {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A word quoted for /bin/sh.
pub fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
