//! Whether a test's real environment is here (root, the tools, boringtun-cli): under CI=true a
//! missing piece fails the test loudly; elsewhere the test says loudly that it did not run.

use std::path::{Path, PathBuf};

/// Whether the real environment is here: root, wireguard-go, wg, ip, ping. Under CI=true a
/// missing piece fails the test; elsewhere the test says loudly that it did not run.
pub fn real_environment(test: &str) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_string());
    }
    for tool in ["wireguard-go", "wg", "ip", "ping", "unshare", "nsenter"] {
        if which(tool).is_none() {
            missing.push(tool.to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{test}: cannot run without {}", missing.join(", "));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg} (CI=true: scripts/setup installs them)");
    }
    eprintln!("SKIPPED (not counted as passed): {msg}");
    false
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

/// boringtun-cli as scripts/setup builds it; None (said loudly, or a failure under CI=true)
/// when it is missing.
pub fn boringtun(test: &str) -> Option<String> {
    let root = std::env::var("WG_EXEC_BORINGTUN_ROOT")
        .unwrap_or_else(|_| "/var/cache/wg-exec-boringtun".into());
    let program = format!("{root}/bin/boringtun-cli");
    if Path::new(&program).is_file() {
        return Some(program);
    }
    let msg = format!("{test}: {program} is missing (scripts/setup builds it)");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED (not counted as passed): {msg}");
    None
}
