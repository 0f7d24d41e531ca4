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
    require(test, &missing, " (CI=true: scripts/setup installs them)")
}

/// Whether nothing is `missing`; else what a test says when part of its environment is
/// missing: `TEST: cannot run without A, B` (see `not_here`).
pub fn require(test: &str, missing: &[String], ci_note: &str) -> bool {
    missing.is_empty()
        || not_here(
            &format!("{test}: cannot run without {}", missing.join(", ")),
            ci_note,
        )
}

/// A test's environment is not here, `msg` says what: under CI=true the test fails loudly
/// (`ci_note` after the message); elsewhere it says loudly that it did not run. Never true.
pub fn not_here(msg: &str, ci_note: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}{ci_note}");
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
    not_here(
        &format!("{test}: {program} is missing (scripts/setup builds it)"),
        "",
    );
    None
}
