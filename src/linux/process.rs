//! Child processes (hooks, modprobe, a userspace WireGuard), key files and name resolution:
//! the parts of the kernel seam that are not netlink.

use super::netns::Entered;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wg_exec_steps::{Endpoint, KernelError, Key};
use zeroize::Zeroize;

/// The whole environment a child gets (besides what the caller adds, such as DEVICE).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A command with an empty environment but PATH, stdin from /dev/null, stdout to our stderr,
/// and every descriptor above 2 closed on exec.
pub fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("PATH", PATH).stdin(Stdio::null());
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

pub fn hook(device: &str, script: &str) -> Result<(), KernelError> {
    let mut cmd = command("/bin/sh");
    cmd.arg("-e").arg("-c").arg(script).env("DEVICE", device);
    run(cmd, "/bin/sh")
}

pub fn modprobe(module: &str) -> Result<(), KernelError> {
    let mut cmd = command("modprobe");
    cmd.arg(module);
    run(cmd, "modprobe")
}

/// Starts a userspace implementation for `name` in the namespace `target` and waits until it
/// serves its UAPI socket. Returns the pids of what it left running (wireguard-go forks a
/// daemon and exits), when they can be known cheaply.
pub fn start_userspace(
    program: &str,
    name: &str,
    target: &File,
    home: &File,
    socket: &Path,
) -> Result<Option<Vec<i32>>, KernelError> {
    if socket.exists() && std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return Err(KernelError::new(format!(
            "{} is in use: another userspace WireGuard serves {name}",
            socket.display()
        )));
    }
    let mut cmd = command(program);
    // boringtun-cli drops privileges to the login user, and there is none under systemd (it
    // fails with "NULL from getlogin"); WG_SUDO=true keeps them, as wg-quick users set it.
    // wireguard-go ignores it.
    cmd.arg(name)
        .env("WG_SUDO", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // As a child subreaper for the duration of the start, wg-exec inherits the daemon that the
    // program forks before exiting, and finds its pid in its own children list instead of
    // scanning /proc. (It is reparented to init again when wg-exec exits.)
    let subreaper = set_child_subreaper(true);
    let output = {
        // The child inherits the namespace of the thread that forks it.
        let _inside = Entered::enter(target, home)?;
        cmd.output()
            .map_err(|e| KernelError::new(format!("cannot start {program}: {e}")))
    };
    let daemons = match subreaper {
        true => {
            set_child_subreaper(false);
            children()
        }
        false => None,
    };
    let output = output?;
    // Its own words (wireguard-go prints a banner) go to the debug log, or into the error.
    let said = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    let said: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['│', '┌', '└']))
        .collect();
    log::debug!("{program} {name}: {}", said.join(" / "));
    if !output.status.success() {
        return Err(KernelError::new(format!(
            "{program} {name} failed ({}): {}",
            output.status,
            said.join(" / ")
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if super::uapi::ready(socket) {
            return Ok(daemons);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(KernelError::new(format!(
        "{program} did not open {} within 10 s",
        socket.display()
    )))
}

fn set_child_subreaper(on: bool) -> bool {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches only this process.
    unsafe {
        libc::prctl(
            libc::PR_SET_CHILD_SUBREAPER,
            libc::c_ulong::from(on),
            0,
            0,
            0,
        ) == 0
    }
}

/// This thread's living children (/proc/thread-self/children), None where the kernel does not
/// provide the list.
fn children() -> Option<Vec<i32>> {
    let text = std::fs::read_to_string("/proc/thread-self/children").ok()?;
    Some(
        text.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|p| !exited(*p))
            .collect(),
    )
}

/// The processes serving `name`'s UAPI socket: their last argument is the interface name and
/// one of their descriptors is the listening socket bound to that path (found through
/// /proc/PID/net/unix, which shows the socket's own network namespace).
pub fn uapi_holders(name: &str, socket: &Path) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    // boringtun binds "/var/run/wireguard//NAME.sock": compare paths in one spelling.
    let normal = |p: &str| {
        let mut p = p.to_string();
        while p.contains("//") {
            p = p.replace("//", "/");
        }
        match p.strip_prefix("/var/run/") {
            Some(rest) => format!("/run/{rest}"),
            None => p,
        }
    };
    let wanted = normal(&socket.to_string_lossy());
    let mut pids = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let last = cmdline.split(|b| *b == 0).rfind(|a| !a.is_empty());
        if last != Some(name.as_bytes()) {
            continue;
        }
        let Ok(unix) = std::fs::read_to_string(format!("/proc/{pid}/net/unix")) else {
            continue;
        };
        let inodes: Vec<String> = unix
            .lines()
            .filter(|l| l.split_whitespace().nth(7).map(normal).as_deref() == Some(&*wanted))
            .filter_map(|l| l.split_whitespace().nth(6).map(|i| format!("socket:[{i}]")))
            .collect();
        let holds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path())
                        .map(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false);
        if holds {
            pids.push(pid);
        }
    }
    pids
}

/// Those of `pids` that are still running with `name` as their last argument (a recorded pid
/// may have been reused by another program since).
pub fn still_serving(name: &str, pids: &[i32]) -> Vec<i32> {
    pids.iter()
        .copied()
        .filter(|p| !exited(*p))
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| c.split(|b| *b == 0).rfind(|a| !a.is_empty()) == Some(name.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// Gone, or a zombie waiting for its parent.
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
    }
}

fn wait_exited(pids: &[i32], within: Duration) -> Vec<i32> {
    let deadline = Instant::now() + within;
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|p| !exited(*p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// After its link was deleted: removes the UAPI socket (wireguard-go exits when its link or
/// its socket goes), waits for `pids` to exit, and stops those that do not (boringtun-cli
/// keeps running) with SIGTERM, then SIGKILL.
pub fn stop_userspace(socket: &Path, pids: &[i32]) -> Result<(), KernelError> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let alive = wait_exited(pids, Duration::from_millis(500));
    let _ = std::fs::remove_file(socket);
    let alive = wait_exited(&alive, Duration::from_secs(2));
    for p in &alive {
        log::info!(
            "pid {p} still serves {} after its link was deleted: SIGTERM",
            socket.display()
        );
        let _ = kill(Pid::from_raw(*p), Signal::SIGTERM);
    }
    let alive = wait_exited(&alive, Duration::from_secs(3));
    for p in &alive {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    match wait_exited(&alive, Duration::from_secs(2)).as_slice() {
        [] => Ok(()),
        left => Err(KernelError::new(format!(
            "the userspace WireGuard (pid {left:?}) for {} does not exit, even after SIGKILL",
            socket.display()
        ))),
    }
}

/// A fresh Curve25519 private key (clamped, as `wg genkey` writes it).
pub fn generate_key() -> Result<Key, KernelError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| KernelError::new(format!("getrandom: {e}")))?;
    b[0] &= 248;
    b[31] = (b[31] & 127) | 64;
    let key = Key::from_bytes(b, true);
    b.zeroize();
    Ok(key)
}

/// Writes a new key file: parent directory 0755 if missing, an exclusive 0600 temporary file,
/// fsync, then a rename that never replaces an existing file.
pub fn write_key_file(path: &Path) -> Result<(), KernelError> {
    let io = |what: &str, e: std::io::Error| {
        let mut k = KernelError::from_io(&e);
        k.message = format!("{what}: {}", k.message);
        k
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| io(&format!("create {}", dir.display()), e))?;
    }
    let file_name = path.file_name().and_then(|f| f.to_str()).unwrap_or("key");
    let tmp = dir.join(format!(".{file_name}.wg-exec-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io(&format!("create {}", tmp.display()), e))?;
    let key = generate_key()?;
    let mut text = format!("{}\n", key.to_base64());
    let written = f.write_all(text.as_bytes()).and_then(|_| f.sync_all());
    text.zeroize();
    drop(f);
    // link(2) fails with EEXIST rather than replace a key that appeared meanwhile; unlike
    // renameat2(RENAME_NOREPLACE) it also exists in musl builds.
    let placed = written.and_then(|_| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    if let Err(e) = placed {
        return Err(io(&format!("write {}", path.display()), e));
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// How many times a failed lookup is retried: WG_ENDPOINT_RESOLUTION_RETRIES (a count or
/// "infinity"), as `wg` reads it. None = wg-exec's default (transient failures forever,
/// permanent ones never).
fn retries_from_env() -> Option<u64> {
    match std::env::var("WG_ENDPOINT_RESOLUTION_RETRIES")
        .ok()?
        .as_str()
    {
        "infinity" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// Resolves host:port with getaddrinfo in the calling thread's namespace (the caller enters the
/// socket namespace), retrying like `wg`.
pub fn resolve(ep: &Endpoint, stop: &AtomicBool) -> Result<SocketAddr, KernelError> {
    if let Ok(ip) = ep.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, ep.port));
    }
    let configured = retries_from_env();
    let mut delay = Duration::from_millis(200);
    let mut attempt: u64 = 0;
    loop {
        match getaddrinfo(&ep.host, ep.port) {
            Ok(addr) => return Ok(addr),
            Err((code, text)) => {
                let transient = code == libc::EAI_AGAIN;
                let allowed = match configured {
                    Some(n) => attempt < n,
                    None => transient,
                };
                if !allowed || stop.load(Ordering::SeqCst) {
                    let tries = attempt + 1;
                    return Err(KernelError::new(format!(
                        "{text} (after {tries} attempt{})",
                        if tries == 1 { "" } else { "s" }
                    )));
                }
                log::warn!("resolving {}: {text}; retrying in {delay:?}", ep.host);
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
        }
    }
}

/// getaddrinfo for UDP; the first result. Rust's ToSocketAddrs hides the EAI code, which
/// decides whether a failure is worth retrying.
fn getaddrinfo(host: &str, port: u16) -> Result<SocketAddr, (i32, String)> {
    let c_host = CString::new(host).map_err(|_| (libc::EAI_NONAME, "bad host".to_string()))?;
    let c_port = CString::new(port.to_string()).expect("digits");
    // SAFETY: zeroed addrinfo is a valid "no hints" value; we set the fields we need.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_DGRAM;
    hints.ai_flags = libc::AI_ADDRCONFIG;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated strings and hints; res is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), c_port.as_ptr(), &hints, &mut res) };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static string.
        let text = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
            .to_string_lossy()
            .into_owned();
        return Err((rc, text));
    }
    let mut out = None;
    let mut cur = res;
    while !cur.is_null() && out.is_none() {
        // SAFETY: cur is a node of the list getaddrinfo returned.
        let ai = unsafe { &*cur };
        out = match ai.ai_family {
            libc::AF_INET => {
                // SAFETY: AF_INET entries hold a sockaddr_in.
                let sa = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in) };
                Some(SocketAddr::new(
                    IpAddr::from(u32::from_be(sa.sin_addr.s_addr).to_be_bytes()),
                    port,
                ))
            }
            libc::AF_INET6 => {
                // SAFETY: AF_INET6 entries hold a sockaddr_in6.
                let sa = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in6) };
                Some(SocketAddr::new(IpAddr::from(sa.sin6_addr.s6_addr), port))
            }
            _ => None,
        };
        cur = ai.ai_next;
    }
    // SAFETY: res came from a successful getaddrinfo.
    unsafe { libc::freeaddrinfo(res) };
    out.ok_or((libc::EAI_NONAME, "no IPv4 or IPv6 address".into()))
}
