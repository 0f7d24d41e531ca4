//! Child processes with nothing of wg-exec's but what they are given: an empty environment but
//! PATH (wg-exec's own) and what the caller adds, such as DEVICE; stdin from /dev/null, stdout
//! to our stderr, every descriptor above 2 closed. Hooks and modprobe run through here.
#![allow(unsafe_code)] // close_range in pre_exec

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use wg_exec_steps::KernelError;

/// The whole environment a child gets (besides what the caller adds, such as DEVICE).
/// PATH when wg-exec was started without one.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The PATH children get: the one wg-exec was started with (a unit's, which on NixOS names the
/// store paths of ip and wg), else the usual directories.
pub fn path() -> String {
    std::env::var("PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| PATH.to_string())
}

/// A command with an empty environment but PATH, stdin from /dev/null, stdout to our stderr,
/// and every descriptor above 2 closed on exec.
pub fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("PATH", path()).stdin(Stdio::null());
    if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
        cmd.stdout(Stdio::from(fd));
    }
    // SAFETY: close_range is async-signal-safe and touches only the child's descriptor table.
    // CLOEXEC rather than close keeps std's own exec-error pipe working.
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    cmd
}

/// Runs `cmd` to completion; an exit other than 0 is an error naming the status.
pub fn run(mut cmd: Command, what: &str) -> Result<(), KernelError> {
    let status = cmd
        .status()
        .map_err(|e| KernelError::new(format!("cannot start {what}: {e}")))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(c) => Err(KernelError::new(format!("{what} exited with status {c}"))),
        None => Err(KernelError::new(format!("{what} was killed by {status}"))),
    }
}

/// Runs a hook with bash, as the module's generated scripts and wg-quick do (`<(…)` and other
/// bashisms in real configurations work), else with /bin/sh where there is no bash.
pub fn hook(device: &str, script: &str) -> Result<(), KernelError> {
    let shell = match std::path::Path::new("/bin/bash").exists() {
        true => "/bin/bash",
        false => "/bin/sh",
    };
    let mut cmd = command(shell);
    cmd.arg("-e").arg("-c").arg(script).env("DEVICE", device);
    run(cmd, shell)
}

pub fn modprobe(module: &str) -> Result<(), KernelError> {
    let mut cmd = command("modprobe");
    cmd.arg(module);
    run(cmd, "modprobe")
}

/// Runs `nft -f -` with `script` on stdin (one atomic transaction). nftables over netlink has
/// no well-kept Rust crate with a license this project can take (rustables is GPL-3.0; the
/// `nftables` crate drives this same binary through JSON), and nf_tables' expression encoding
/// is what nft exists to maintain; the script is the same text `--print` shows.
pub fn nft(script: &str) -> Result<(), KernelError> {
    let mut cmd = command("nft");
    cmd.arg("-f")
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| KernelError::new(format!("cannot start nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        // A failed write shows as nft's own error below.
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| KernelError::new(format!("nft: {e}")))?;
    match out.status.code() {
        Some(0) => Ok(()),
        _ => Err(KernelError::new(format!(
            "nft failed ({}): {}",
            out.status,
            first_lines(&out.stderr)
        ))),
    }
}

/// `nft list tables`: "family name" of each table.
pub fn nft_tables() -> Result<Vec<(String, String)>, KernelError> {
    let mut cmd = command("nft");
    cmd.arg("list")
        .arg("tables")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd
        .output()
        .map_err(|e| KernelError::new(format!("cannot start nft: {e}")))?;
    if !out.status.success() {
        return Err(KernelError::new(format!(
            "nft list tables failed ({}): {}",
            out.status,
            first_lines(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["table", family, name] => Some((family.to_string(), name.to_string())),
                _ => None,
            }
        })
        .collect())
}

/// A program's error output for a message: its first lines, joined.
fn first_lines(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(4)
        .collect();
    lines.join(" / ")
}
