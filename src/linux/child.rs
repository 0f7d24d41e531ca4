//! Child processes with nothing of wg-exec's but what they are given: an empty environment but
//! PATH (wg-exec's own) and what the caller adds, such as DEVICE; stdin from /dev/null, stdout
//! to our stderr, every descriptor above 2 closed; and the capabilities of their [`Grant`],
//! set in the child between fork and exec. Hooks, modprobe, nft, resolvconf and the userspace
//! daemon run through here.
#![allow(unsafe_code)] // close_range, capget/capset and prctl in pre_exec

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

/// The capabilities a child gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// What wg-exec itself was given (by root or the unit): hooks, the administrator's code,
    /// run with what the unit grants, as the module's scripts do.
    Unit,
    /// These (a mask of capability numbers) and no other: effective, permitted, inheritable
    /// and ambient are exactly these (less what wg-exec lacks), and the bounding set too where
    /// wg-exec holds CAP_SETPCAP (root: without it a root child gets the whole bounding set
    /// back at exec, see [`limits_root_children`]).
    Only(u64),
}

/// The mask of `caps`.
pub fn mask(caps: &[caps::Capability]) -> u64 {
    caps.iter().fold(0, |m, c| m | c.bitmask())
}

/// modprobe: loading the module.
pub fn modprobe_grant() -> Grant {
    Grant::Only(mask(&[caps::Capability::CAP_SYS_MODULE]))
}

/// nft: nf_tables over netlink.
pub fn nft_grant() -> Grant {
    Grant::Only(mask(&[caps::Capability::CAP_NET_ADMIN]))
}

/// resolvconf: Debian's resolvconf and openresolv write root's own files under /run as uid 0
/// (no capability needed); systemd's resolvconf asks systemd-resolved over D-Bus, which lets a
/// caller that is not root set a link's DNS when it holds CAP_NET_ADMIN. Nothing else.
pub fn resolvconf_grant() -> Grant {
    Grant::Only(mask(&[caps::Capability::CAP_NET_ADMIN]))
}

/// Whether a child running as root can be held to its grant: root gets its whole bounding set
/// at exec, and only CAP_SETPCAP lets the child shrink it first. Not root: ambient decides.
pub fn limits_root_children() -> bool {
    let root = nix::unistd::getuid().is_root() || nix::unistd::geteuid().is_root();
    !root
        || caps::has_cap(None, caps::CapSet::Permitted, caps::Capability::CAP_SETPCAP)
            .unwrap_or(false)
}

/// The highest capability number this kernel knows (read before fork: pre_exec may not open
/// files).
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(63)
        .min(63)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

fn os_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// (effective, permitted) of this thread.
fn capget() -> std::io::Result<(u64, u64)> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two CapData (version 3) into `data`, which holds two.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if r != 0 {
        return Err(os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
    ))
}

fn capset(effective: u64, permitted: u64, inheritable: u64) -> std::io::Result<()> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let half = |m: u64, i: u32| (m >> (32 * i)) as u32;
    let data = [0, 1].map(|i| CapData {
        effective: half(effective, i),
        permitted: half(permitted, i),
        inheritable: half(inheritable, i),
    });
    // SAFETY: capset reads two CapData (version 3) from `data`.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    match r {
        0 => Ok(()),
        _ => Err(os_error()),
    }
}

/// In the child, before exec: the bounding set (where CAP_SETPCAP allows), then effective,
/// permitted and inheritable, then ambient, down to `want`. Only system calls: it runs between
/// fork and exec.
fn limit_to(want: u64, last: u32) -> std::io::Result<()> {
    const SETPCAP: u64 = 1 << 8;
    let (effective, permitted) = capget()?;
    if permitted & SETPCAP != 0 {
        capset(effective | SETPCAP, permitted, 0)?;
        for cap in 0..=last {
            if want & (1 << cap) != 0 {
                continue;
            }
            // SAFETY: prctl with integer arguments, on this process only.
            let r =
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
            if r != 0 && os_error().raw_os_error() != Some(libc::EINVAL) {
                return Err(os_error());
            }
        }
    }
    let keep = want & permitted;
    capset(keep, keep, keep)?;
    // SAFETY: as above.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r != 0 {
        return Err(os_error());
    }
    for cap in 0..=last {
        if keep & (1 << cap) == 0 {
            continue;
        }
        // SAFETY: as above.
        let r = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                libc::c_ulong::from(cap),
                0,
                0,
            )
        };
        if r != 0 {
            return Err(os_error());
        }
    }
    Ok(())
}

/// A command with an empty environment but PATH, stdin from /dev/null, stdout to our stderr,
/// every descriptor above 2 closed on exec, and the capabilities of `grant`.
pub fn command(program: &str, grant: Grant) -> Command {
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
    if let Grant::Only(want) = grant {
        if !limits_root_children() {
            log::warn!(
                "{program} runs as root with wg-exec's whole bounding set: without CAP_SETPCAP (add it to the unit's CapabilityBoundingSet=) wg-exec cannot limit a root child's capabilities"
            );
        }
        let last = last_cap();
        // SAFETY: limit_to makes only capget, capset and prctl calls, all async-signal-safe,
        // on the child's own credentials.
        unsafe {
            cmd.pre_exec(move || limit_to(want, last));
        }
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
/// bashisms in real configurations work), else with /bin/sh where there is no bash. The text
/// reaches the shell as the script file /dev/fd/3 (an anonymous file), not in argv, where every
/// user's `ps` would show it; stdin stays /dev/null for the hook's own commands.
pub fn hook(device: &str, script: &str) -> Result<(), KernelError> {
    use std::io::{Seek, Write};
    use std::os::fd::AsRawFd;
    let shell = match std::path::Path::new("/bin/bash").exists() {
        true => "/bin/bash",
        false => "/bin/sh",
    };
    let text =
        nix::sys::memfd::memfd_create(c"wg-exec-hook", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| {
                KernelError::new(format!("cannot hold the hook's text: memfd_create: {e}"))
            })?;
    let mut text = std::fs::File::from(text);
    text.write_all(script.as_bytes())
        .and_then(|()| text.rewind())
        .map_err(|e| KernelError::new(format!("cannot hold the hook's text: {e}")))?;
    let fd = text.as_raw_fd();
    let mut cmd = command(shell, Grant::Unit);
    cmd.arg("-e").arg("/dev/fd/3").env("DEVICE", device);
    // SAFETY: dup2 and fcntl are async-signal-safe; they touch the child's descriptor table.
    // Registered after command()'s close_range, so fd 3 is the one left open for the exec.
    unsafe {
        cmd.pre_exec(move || {
            let r = match fd {
                3 => libc::fcntl(3, libc::F_SETFD, 0),
                _ => libc::dup2(fd, 3),
            };
            match r {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            }
        });
    }
    let result = run(cmd, shell);
    drop(text);
    result
}

pub fn modprobe(module: &str) -> Result<(), KernelError> {
    let mut cmd = command("modprobe", modprobe_grant());
    cmd.arg(module);
    run(cmd, "modprobe")
}

/// Runs `nft -f -` with `script` on stdin (one atomic transaction). nftables over netlink has
/// no well-kept Rust crate with a license this project can take (rustables is GPL-3.0; the
/// `nftables` crate drives this same binary through JSON), and nf_tables' expression encoding
/// is what nft exists to maintain; the script is the same text `--print` shows.
pub fn nft(script: &str) -> Result<(), KernelError> {
    let mut cmd = command("nft", nft_grant());
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
    let mut cmd = command("nft", nft_grant());
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
