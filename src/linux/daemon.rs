//! The userspace WireGuard's life: started in the socket namespace (entered only when it is not
//! the current one), found by its UAPI socket, stopped when its link is gone.
#![allow(unsafe_code)] // prctl(PR_SET_CHILD_SUBREAPER)

use super::child::{command, mask, Grant};
use super::netns::Entered;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use wg_exec_steps::KernelError;

/// What a userspace start left behind when it failed: the processes it left running (ended
/// already) and the error. The caller removes the link and socket file the program made.
pub struct FailedStart {
    pub error: KernelError,
    pub pids: Vec<i32>,
}

/// What a userspace start left running, when it can be known cheaply.
pub struct Started {
    /// The program's pid and its living descendants: one of them serves the socket (its
    /// SO_PEERCRED). Recorded in the journal; the program's own pid is reaped already, so it is
    /// never signalled.
    pub known: Vec<i32>,
    /// The descendants, held by pidfds: what is ended when the start is undone.
    pub held: Held,
}

/// Processes held by pidfds (pidfd_open(2)): signalled and waited for as the processes they
/// were when they were found, never by a pid number that another process may have taken
/// since (a daemon that exits on its own when its link is deleted is reaped by init, and its
/// pid is free again). Where the kernel has no pidfds, the pid numbers themselves.
#[derive(Default)]
pub struct Held(Vec<(i32, Option<std::os::fd::OwnedFd>)>);

impl Held {
    /// Those of `pids` that are still there.
    pub fn of(pids: &[i32]) -> Held {
        use rustix::process::{pidfd_open, Pid, PidfdFlags};
        Held(
            pids.iter()
                .filter_map(|&p| {
                    let pid = Pid::from_raw(p)?;
                    match pidfd_open(pid, PidfdFlags::empty()) {
                        Ok(fd) => Some((p, Some(fd))),
                        Err(rustix::io::Errno::SRCH) => None,
                        Err(_) => (!exited(p)).then_some((p, None)),
                    }
                })
                .collect(),
        )
    }

    pub fn pids(&self) -> Vec<i32> {
        self.0.iter().map(|(p, _)| *p).collect()
    }

    /// SIGKILL to each, then a wait until they have exited (a zombie counts as exited) or
    /// `within` has passed; returns those still running.
    fn kill(&self, within: Duration) -> Vec<i32> {
        use nix::sys::signal::{kill, Signal};
        for (p, fd) in &self.0 {
            let sent = fd.as_ref().is_some_and(|fd| {
                rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL).is_ok()
            });
            // No pidfd, or a filter that refuses the signal through it while the process runs.
            if !sent && alive(*p, fd.as_ref()) {
                let _ = kill(nix::unistd::Pid::from_raw(*p), Signal::SIGKILL);
            }
        }
        let deadline = Instant::now() + within;
        loop {
            let left: Vec<i32> = self
                .0
                .iter()
                .filter(|(p, fd)| alive(*p, fd.as_ref()))
                .map(|(p, _)| *p)
                .collect();
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// How long the program may take to exit (wireguard-go forks its daemon and exits in 12-33 ms)
/// and then to serve its socket.
const START_LIMIT: Duration = Duration::from_secs(10);

/// Starts a userspace implementation for `name` in the namespace `target` (None: the current
/// one, which is never entered) and waits until it serves its UAPI socket. Returns what it left
/// running (wireguard-go forks a daemon and exits), when that can be known cheaply. On failure
/// every process it left is killed before returning.
pub fn start_userspace(
    program: &str,
    name: &str,
    target: Option<&File>,
    home: &File,
    socket: &Path,
) -> Result<Option<Started>, FailedStart> {
    let fail = |error: KernelError| FailedStart {
        error,
        pids: Vec::new(),
    };
    if socket.exists() && std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return Err(fail(KernelError::new(format!(
            "{} is in use: another userspace WireGuard serves {name}",
            socket.display()
        ))));
    }
    // Its words go to an anonymous file, not a pipe: a program that leaves a process holding
    // the pipe open (or never exits) cannot make wg-exec wait for ever.
    let said_file =
        nix::sys::memfd::memfd_create(c"wg-exec-userspace", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| fail(KernelError::new(format!("memfd_create: {e}"))))?;
    let said_file = File::from(said_file);
    let out = |f: &File| {
        f.try_clone()
            .map(Stdio::from)
            .map_err(|e| fail(KernelError::from_io(&e)))
    };
    // It parses packets from the Internet: CAP_NET_ADMIN for its TUN device (and
    // CAP_NET_BIND_SERVICE for a port below 1024), nothing else wg-exec holds.
    let mut cmd = command(
        program,
        Grant::Only(mask(&crate::privileges::daemon_caps())),
    );
    // boringtun-cli drops privileges to the login user, and there is none under systemd (it
    // fails with "NULL from getlogin"); WG_SUDO=true keeps them, as wg-quick users set it.
    // wireguard-go ignores it.
    cmd.arg(name)
        .env("WG_SUDO", "true")
        .stdout(out(&said_file)?)
        .stderr(out(&said_file)?);
    // boringtun-cli (0.7.1) opens a connected UDP socket per peer after the first handshake,
    // without the device's fwmark: its route is looked up unmarked, and in a full tunnel that
    // is the tunnel itself (the socket binds to the tunnel's own address and every packet after
    // the handshake loops). Found by tests/full_tunnel.rs. Its unconnected socket honours the
    // mark, so wg-exec turns the connected ones off.
    let is_boringtun = Path::new(program)
        .file_name()
        .is_some_and(|f| f.to_string_lossy().starts_with("boringtun"));
    if is_boringtun {
        cmd.arg("--disable-connected-udp");
    }
    // As a child subreaper for the duration of the start, wg-exec inherits the daemon that the
    // program forks before exiting, and finds its pid among its own descendants instead of
    // scanning /proc. (It is reparented to init again when wg-exec exits.)
    let subreaper = Subreaper::on();
    let spawned = {
        // The child inherits the namespace of the thread that forks it.
        let _inside = match target {
            Some(t) => Entered::enter(t, home).map_err(fail)?,
            None => None,
        };
        cmd.spawn()
            .map_err(|e| KernelError::new(format!("cannot start {program}: {e}")))
    };
    let deadline = Instant::now() + START_LIMIT;
    let starter = spawned.as_ref().map(|c| c.id() as i32).ok();
    let status = spawned.map(|mut child| wait_until(&mut child, deadline));
    // What it left running, collected while wg-exec is still their subreaper (an orphan is
    // reparented here, not to init). The program itself first: wireguard-go listens on the
    // socket before it forks its daemon and exits, so the socket's SO_PEERCRED names it.
    let left = || match subreaper.0 {
        true => descendants().map(|d| Started {
            known: starter.into_iter().chain(d.iter().copied()).collect(),
            held: Held::of(&d),
        }),
        false => None,
    };
    let ended = |error: KernelError| {
        let held = left().map(|s| s.held).unwrap_or_default();
        end(&held);
        FailedStart {
            error,
            pids: held.pids(),
        }
    };
    let status = status.map_err(fail)?;
    // Its own words (wireguard-go prints a banner) go to the debug log, or into the error.
    let said = read_said(&said_file);
    let said: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['│', '┌', '└']))
        .collect();
    log::debug!("{program} {name}: {}", said.join(" / "));
    match status {
        Some(s) if s.success() => {}
        Some(s) => {
            return Err(ended(KernelError::new(format!(
                "{program} {name} failed ({s}): {}",
                said.join(" / ")
            ))))
        }
        None => {
            return Err(ended(KernelError::new(format!(
                "{program} {name} did not return within {} s (killed)",
                START_LIMIT.as_secs()
            ))))
        }
    }
    while Instant::now() < deadline {
        if super::uapi::ready(socket) {
            // Only now: boringtun-cli (daemonize) forks twice, and its starter exits once the
            // grandchild serves the socket, while the middle process may still be between its
            // fork and its exit. The server exists now, as a descendant through it or (once it
            // exits) as a child of wg-exec.
            return Ok(left());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(ended(KernelError::new(format!(
        "{program} did not serve {} within {} s",
        socket.display(),
        START_LIMIT.as_secs()
    ))))
}

/// Waits for `child` until `deadline`; past it, kills and reaps it (None).
fn wait_until(
    child: &mut std::process::Child,
    deadline: Instant,
) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// What the program wrote, at most 64 KiB of it.
fn read_said(file: &File) -> String {
    use std::io::{Read, Seek};
    let mut file = file;
    let mut bytes = Vec::new();
    let _ = file.rewind();
    let _ = file.take(64 * 1024).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether a held process still runs: its pidfd is not readable yet (it is once the process
/// has exited; a zombie's is), or, without a pidfd, /proc shows it running.
fn alive(pid: i32, fd: Option<&std::os::fd::OwnedFd>) -> bool {
    let Some(fd) = fd else {
        return !exited(pid);
    };
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    !matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Holds those of `pids` that still serve `name`'s UAPI socket (see [`serves`]): each is held
/// by a pidfd first and checked after, so the process held is the one checked. A recorded pid
/// may have been reused since by another program (wireguard-go's starter exits at once, and its
/// pid is free again): a `tcpdump -i wg0` is never taken for the daemon.
pub fn hold_serving(name: &str, socket: &Path, pids: &[i32]) -> Held {
    let wanted = normal(&socket.to_string_lossy());
    let mut held = Held::of(pids);
    held.0
        .retain(|(p, fd)| serves(*p, name, &wanted) && alive(*p, fd.as_ref()));
    held
}

/// SIGKILL to what a failed start left running, and a wait until it is gone.
fn end(held: &Held) {
    let left = held.kill(Duration::from_secs(5));
    if !left.is_empty() {
        log::error!("processes {left:?} left by a failed userspace start do not exit");
    }
}

/// What a UAPI socket turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Socket {
    /// None there (or a stale one, now removed as wg(8) removes it).
    Absent,
    /// Served by this process, the daemon wg-exec started (or, when nothing is known, a
    /// process named for the interface that holds the socket).
    Served(i32),
    /// Something else: not a socket, another user's, or served by another process. Never used.
    Refused(String),
}

/// Checks `socket` before anything is sent to it: a socket (S_ISSOCK), owned by the effective
/// user or root, whose server (SO_PEERCRED) is one of `known` (the processes wg-exec started or
/// the journal recorded) or, when none are known, a process serving `name`'s socket. A stale
/// socket (connect: ECONNREFUSED) is removed, as wg(8) does, when `remove_stale`; a read-only
/// command (status) leaves it in place and is told it is stale.
pub fn check_socket(name: &str, socket: &Path, known: &[i32], remove_stale: bool) -> Socket {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let euid = nix::unistd::geteuid().as_raw();
    let link = match std::fs::symlink_metadata(socket) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Socket::Absent,
        Err(e) => return Socket::Refused(format!("{}: {e}", socket.display())),
    };
    // A symbolic link there is followed only when it is the effective user's or root's (the
    // non-root unit's ExecStartPost links its own socket into /run/wireguard for wg(8)): its
    // owner vouches for where it points.
    let vouched = link.file_type().is_symlink();
    if vouched && link.uid() != euid && link.uid() != 0 {
        return Socket::Refused(format!(
            "{} is a symbolic link of uid {} (expected uid {euid} or root)",
            socket.display(),
            link.uid()
        ));
    }
    let meta = match vouched {
        false => link,
        true => match std::fs::metadata(socket) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Socket::Absent,
            Err(e) => return Socket::Refused(format!("{}: {e}", socket.display())),
        },
    };
    let what = format!(
        "{} (owner uid {}, mode {:o})",
        socket.display(),
        meta.uid(),
        meta.permissions().mode() & 0o7777
    );
    if !meta.file_type().is_socket() {
        return Socket::Refused(format!("{what} is not a socket"));
    }
    if meta.uid() != euid && meta.uid() != 0 && known.is_empty() && !vouched {
        return Socket::Refused(format!(
            "{what} belongs to another user (expected uid {euid} or root)"
        ));
    }
    let stream = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) && !remove_stale => {
            return Socket::Refused(format!(
                "{what} is stale (nobody listens); left in place by a read-only command"
            ));
        }
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            // Nobody listens: what a killed daemon leaves. wg(8) removes it the same way.
            return match std::fs::remove_file(socket) {
                Ok(()) => {
                    log::info!("removed the stale socket {what}");
                    Socket::Absent
                }
                Err(e) => Socket::Refused(format!("{what} is stale and cannot be removed: {e}")),
            };
        }
        Err(e) => return Socket::Refused(format!("cannot connect to {what}: {e}")),
    };
    let peer =
        match nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials) {
            Ok(c) => c.pid(),
            Err(e) => return Socket::Refused(format!("{what}: SO_PEERCRED: {e}")),
        };
    drop(stream);
    let ok = match known.is_empty() {
        false => known.contains(&peer),
        // Nothing recorded (status, refresh, reload): a process serving this interface.
        true => !uapi_holders(name, socket).is_empty(),
    };
    match ok {
        true => Socket::Served(peer),
        false if known.is_empty() => Socket::Refused(format!(
            "{what} is served by pid {peer}, which is no userspace WireGuard serving {name}"
        )),
        false => Socket::Refused(format!(
            "{what} is served by pid {peer}, not by the userspace WireGuard wg-exec started for {name} (pids {known:?})"
        )),
    }
}

/// wg-exec as a child subreaper while this lives (whether it could be made one), on every
/// return path of a start.
struct Subreaper(bool);

impl Subreaper {
    fn on() -> Self {
        Subreaper(set_child_subreaper(true))
    }
}

impl Drop for Subreaper {
    fn drop(&mut self) {
        if self.0 {
            set_child_subreaper(false);
        }
    }
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

/// The living children of `pid`, of all its threads (/proc/PID/task/TID/children; an orphan
/// is reparented to one thread of its subreaper, not necessarily the one that forked). None
/// where the kernel does not provide the lists.
fn children(pid: &str) -> Option<Vec<i32>> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut found = Vec::new();
    for task in tasks.flatten() {
        let path = task.path().join("children");
        match std::fs::read_to_string(&path) {
            Ok(text) => found.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            ),
            // The thread ended meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
    }
    found.sort_unstable();
    found.dedup();
    Some(found)
}

/// This process's living descendants (at most 64 levels deep, at most 4096 of them), read
/// until two walks agree: a walk that runs while a middle process exits may miss its child,
/// which is reparented to wg-exec (the subreaper) at that moment, and the next walk finds it
/// there. None where the kernel does not provide the children lists.
fn descendants() -> Option<Vec<i32>> {
    let walk = || -> Option<Vec<i32>> {
        let mut found = Vec::new();
        let mut level = vec!["self".to_string()];
        for _ in 0..64 {
            let mut next = Vec::new();
            for pid in &level {
                // A process that exited meanwhile has no children left to list.
                let Some(kids) = children(pid) else {
                    if pid == "self" {
                        return None;
                    }
                    continue;
                };
                next.extend(kids.into_iter().filter(|k| !found.contains(k)));
            }
            if next.is_empty() || found.len() + next.len() > 4096 {
                break;
            }
            found.extend(&next);
            level = next.iter().map(i32::to_string).collect();
        }
        found.retain(|p| !exited(*p));
        found.sort_unstable();
        Some(found)
    };
    let mut last = walk()?;
    for _ in 0..100 {
        let now = walk()?;
        if now == last {
            return Some(now);
        }
        last = now;
    }
    Some(last)
}

/// Whether a command line (NUL-separated) names the interface among its arguments
/// (wireguard-go NAME; boringtun-cli NAME --disable-connected-udp).
fn names(cmdline: &[u8], name: &str) -> bool {
    cmdline
        .split(|b| *b == 0)
        .skip(1)
        .any(|a| a == name.as_bytes())
}

/// The processes serving `name`'s UAPI socket: an argument is the interface name and
/// one of their descriptors is the listening socket bound to that path (found through
/// /proc/PID/net/unix, which shows the socket's own network namespace).
pub fn uapi_holders(name: &str, socket: &Path) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let wanted = normal(&socket.to_string_lossy());
    procs
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| serves(*pid, name, &wanted))
        .collect()
}

/// A socket path in one spelling: boringtun binds "/var/run/wireguard//NAME.sock".
fn normal(path: &str) -> String {
    let mut p = path.to_string();
    while p.contains("//") {
        p = p.replace("//", "/");
    }
    match p.strip_prefix("/var/run/") {
        Some(rest) => format!("/run/{rest}"),
        None => p,
    }
}

/// Whether process `pid` serves `name`'s UAPI socket (`wanted`, in [`normal`] spelling): an
/// argument is the interface name and one of its descriptors is the listening socket bound to
/// that path (found through /proc/PID/net/unix, which shows the socket's own network namespace).
fn serves(pid: i32, name: &str, wanted: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    if !names(&cmdline, name) {
        return false;
    }
    let Ok(unix) = std::fs::read_to_string(format!("/proc/{pid}/net/unix")) else {
        return false;
    };
    let inodes: Vec<String> = unix
        .lines()
        .filter(|l| l.split_whitespace().nth(7).map(normal).as_deref() == Some(wanted))
        .filter_map(|l| l.split_whitespace().nth(6).map(|i| format!("socket:[{i}]")))
        .collect();
    if inodes.is_empty() {
        return false;
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .map(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

/// Gone, or a zombie waiting for its parent.
fn exited(pid: i32) -> bool {
    state_and_parent(pid).is_none_or(|(state, _)| state == 'Z')
}

/// A process's state letter and parent pid, from /proc/PID/stat: the fields after the last ')'
/// (the name before it may hold anything, parentheses and spaces too). None: no such process.
pub fn state_and_parent(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.parse().ok()?))
}

/// After its link was deleted: removes the UAPI socket and ends `held` (checked to be the
/// processes serving it, and held, before the link went) with SIGKILL at once. With its link
/// and its socket gone, nothing is left for it to clean up, and SIGTERM would only cost the
/// 20-50 ms a Go program takes to shut down. Returns only when they are gone.
pub fn stop_userspace(socket: &Path, held: &Held) -> Result<(), KernelError> {
    let _ = std::fs::remove_file(socket);
    match held.kill(Duration::from_secs(5)).as_slice() {
        [] => Ok(()),
        left => Err(KernelError::new(format!(
            "the userspace WireGuard (pid {left:?}) for {} does not exit, even after SIGKILL",
            socket.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    //! Hostile stand-ins at /var/run/wireguard/NAME.sock (names unique to the test run).
    use super::*;
    use std::os::unix::net::UnixListener;

    /// Root is needed to write /var/run/wireguard; said loudly, a failure under CI=true.
    fn root(test: &str) -> bool {
        if nix::unistd::geteuid().is_root() {
            std::fs::create_dir_all("/var/run/wireguard").unwrap();
            return true;
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test} needs root under CI=true"
        );
        eprintln!("SKIPPED (not counted as passed): {test} needs root");
        false
    }

    fn path(tag: &str) -> (String, std::path::PathBuf) {
        let name = format!("wgs{}{tag}", std::process::id() % 100_000);
        let p = std::path::PathBuf::from(format!("/var/run/wireguard/{name}.sock"));
        let _ = std::fs::remove_file(&p);
        (name, p)
    }

    #[test]
    fn a_regular_file_is_refused_and_kept() {
        if !root("regular file") {
            return;
        }
        let (name, p) = path("f");
        std::fs::write(&p, "").unwrap();
        let got = check_socket(&name, &p, &[], true);
        assert!(
            matches!(&got, Socket::Refused(why) if why.contains("is not a socket")),
            "{got:?}"
        );
        assert!(p.exists());
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_stale_socket_is_removed() {
        if !root("stale socket") {
            return;
        }
        let (name, p) = path("s");
        drop(UnixListener::bind(&p).unwrap());
        assert_eq!(check_socket(&name, &p, &[], true), Socket::Absent);
        assert!(!p.exists(), "the stale socket is removed, as wg(8) does");
    }

    #[test]
    fn a_read_only_check_keeps_a_stale_socket() {
        if !root("stale socket, read-only") {
            return;
        }
        let (name, p) = path("k");
        drop(UnixListener::bind(&p).unwrap());
        for known in [&[][..], &[4242][..]] {
            let got = check_socket(&name, &p, known, false);
            assert!(
                matches!(&got, Socket::Refused(why) if why.contains("is stale") && why.contains("left in place")),
                "{got:?}"
            );
            assert!(p.exists(), "a read-only check removed {}", p.display());
        }
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_socket_served_by_another_process_is_refused() {
        if !root("served by another") {
            return;
        }
        let (name, p) = path("o");
        // This test process serves it: neither the daemon wg-exec recorded (pid 1 here) nor a
        // process named for the interface.
        let listener = UnixListener::bind(&p).unwrap();
        let me = std::process::id() as i32;
        let got = check_socket(&name, &p, &[1], true);
        assert!(
            matches!(&got, Socket::Refused(why) if why.contains(&format!("served by pid {me}, not by the userspace WireGuard wg-exec started"))),
            "{got:?}"
        );
        let got = check_socket(&name, &p, &[], true);
        assert!(
            matches!(&got, Socket::Refused(why) if why.contains("which is no userspace WireGuard serving")),
            "{got:?}"
        );
        // The recorded server passes.
        assert_eq!(check_socket(&name, &p, &[me], true), Socket::Served(me));
        drop(listener);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_link_is_followed_only_when_it_is_roots_or_the_users() {
        if !root("links") {
            return;
        }
        let (name, p) = path("l");
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.sock");
        let listener = UnixListener::bind(&real).unwrap();
        std::os::unix::fs::symlink(&real, &p).unwrap();
        // Root's link (as the non-root unit's ExecStartPost makes it): followed; the server is
        // this process, not one serving the interface, so refused for that reason only.
        let got = check_socket(&name, &p, &[], true);
        assert!(
            matches!(&got, Socket::Refused(why) if why.contains("which is no userspace WireGuard serving")),
            "{got:?}"
        );
        let me = std::process::id() as i32;
        assert_eq!(check_socket(&name, &p, &[me], true), Socket::Served(me));
        // Another user's link: not followed.
        std::os::unix::fs::lchown(&p, Some(65534), None).unwrap();
        let got = check_socket(&name, &p, &[me], true);
        assert!(
            matches!(&got, Socket::Refused(why) if why.contains("is a symbolic link of uid 65534")),
            "{got:?}"
        );
        drop(listener);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn another_users_socket_is_refused_when_nothing_is_recorded() {
        if !root("another user's") {
            return;
        }
        let (name, p) = path("u");
        let listener = UnixListener::bind(&p).unwrap();
        nix::unistd::chown(&p, Some(65534.into()), None).unwrap();
        let got = check_socket(&name, &p, &[], true);
        assert!(
            matches!(&got, Socket::Refused(why) if why.contains("owner uid 65534") && why.contains("belongs to another user")),
            "{got:?}"
        );
        drop(listener);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn held_processes_are_ended_and_a_gone_one_is_left_out() {
        use std::os::unix::process::ExitStatusExt;
        let mut running = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = gone.id() as i32;
        gone.wait().unwrap();
        let pid = running.id() as i32;
        let held = Held::of(&[pid, gone_pid]);
        assert_eq!(held.pids(), vec![pid], "a reaped process is not held");
        assert!(held.0[0].1.is_some(), "held by a pidfd");
        assert_eq!(held.kill(Duration::from_secs(5)), Vec::<i32>::new());
        assert_eq!(running.wait().unwrap().signal(), Some(libc::SIGKILL));
    }

    /// boringtun-cli's shape (daemonize): a middle process forks the server and exits. The
    /// server is a descendant while the middle process lives, and wg-exec's own child once it
    /// has exited (reparented to the subreaper, not to init).
    #[test]
    fn a_daemon_forked_by_a_middle_process_is_found_before_and_after_it_exits() {
        use std::io::BufRead;
        let subreaper = Subreaper::on();
        assert!(subreaper.0, "PR_SET_CHILD_SUBREAPER failed");
        // The middle process exits when its input ends, after the first look.
        let mut middle = std::process::Command::new("sh")
            .args([
                "-c",
                "sleep 30 </dev/null >/dev/null 2>&1 & echo $!; read _",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(middle.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let server: i32 = line.trim().parse().unwrap();
        let through_middle = descendants().unwrap();
        drop(middle.stdin.take());
        middle.wait().unwrap();
        let after = descendants().unwrap();
        let (_, parent) = state_and_parent(server).unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(server),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(server), None);
        drop(subreaper);
        assert!(
            through_middle.contains(&(middle.id() as i32)) && through_middle.contains(&server),
            "middle {} and server {server} among {through_middle:?}",
            middle.id()
        );
        assert_eq!(
            parent,
            std::process::id() as i32,
            "reparented to the subreaper"
        );
        assert!(after.contains(&server), "server {server} among {after:?}");
        assert!(
            !after.contains(&(middle.id() as i32)),
            "the reaped middle process is gone: {after:?}"
        );
    }
}
