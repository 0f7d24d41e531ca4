//! Endpoint names, resolved where the tunnel's UDP socket is and as a program there would see
//! them: in the socket namespace, with /etc/netns/NS/* in place of /etc/* when they exist (what
//! `ip netns exec NS` arranges). Many names are looked up at once by a bounded set of worker
//! threads, each entering the namespace for itself (setns is per thread). When /etc/netns/NS has
//! files, the lookups run in a child process forked for the purpose, which first takes a private
//! mount namespace and binds those files (a mount namespace cannot be changed by one thread of
//! a process with several, and wg-exec's own must not change); its answers come back over a
//! pipe. The caller waits for answers in slices of 100 ms, so that a signal is noticed.
//!
//! getaddrinfo is called directly: Rust's ToSocketAddrs hides the EAI code that says whether a
//! failure is worth retrying.
#![allow(unsafe_code)] // getaddrinfo, fork, and the child's mounts

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long up tries a name by default before configuring the peer without it.
pub const CONFIGURE_BOUND: Duration = Duration::from_secs(5);
/// At most this many lookups at once.
const WORKERS: usize = 32;

/// How many times a failed lookup is retried: WG_ENDPOINT_RESOLUTION_RETRIES (a count or
/// "infinity"), as `wg` reads it; None when it is not set.
pub fn retries_from_env() -> Option<u64> {
    match std::env::var("WG_ENDPOINT_RESOLUTION_RETRIES")
        .ok()?
        .as_str()
    {
        "infinity" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// When to give up on a name.
#[derive(Debug, Clone, Copy)]
pub enum Policy {
    /// Retry transient failures (and, with a count, any failure) like `wg`: `retries` more
    /// attempts, with a backoff from 200 ms to 5 s.
    Retries(u64),
    /// Retry transient failures until `bound` has passed; a permanent failure ends at once.
    Bounded(Duration),
    /// One attempt.
    Once,
}

/// Why a name did not resolve: the EAI code, its text, whether it may pass, the attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub text: String,
    pub transient: bool,
    pub attempts: u64,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (after {} attempt{})",
            self.text,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" }
        )
    }
}

pub type Answer = Result<Vec<IpAddr>, Failure>;

/// The directory whose files replace /etc/* in the named namespace `name`, when it has any.
pub fn etc_netns(name: &str) -> Option<PathBuf> {
    let dir = Path::new("/etc/netns").join(name);
    let has_files = std::fs::read_dir(&dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    has_files.then_some(dir)
}

/// Resolves `hosts` in the namespace `target` (None: the current one) with `etc` in place of
/// /etc when given. None when `stop` was set before every answer came.
pub fn resolve_all(
    hosts: &[String],
    target: Option<&File>,
    etc: Option<&Path>,
    policy: Policy,
    stop: &AtomicBool,
) -> Option<Vec<Answer>> {
    match etc {
        None => in_threads(hosts, target, policy, stop),
        Some(etc) => in_child(hosts, target, etc, policy, stop),
    }
}

/// Worker threads, each in `target`; answers collected in order.
fn in_threads(
    hosts: &[String],
    target: Option<&File>,
    policy: Policy,
    stop: &AtomicBool,
) -> Option<Vec<Answer>> {
    let mut answers: Vec<Option<Answer>> = vec![None; hosts.len()];
    let queue = Arc::new(Mutex::new((0..hosts.len()).collect::<Vec<usize>>()));
    let shared: Arc<Vec<String>> = Arc::new(hosts.to_vec());
    let (tx, rx) = mpsc::channel::<(usize, Answer)>();
    let workers = WORKERS.min(hosts.len());
    for _ in 0..workers {
        let queue = Arc::clone(&queue);
        let hosts = Arc::clone(&shared);
        let tx = tx.clone();
        let target = match target.map(|f| f.try_clone()) {
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                log::error!("cannot share the namespace with a resolver thread: {e}");
                return None;
            }
            None => None,
        };
        // Detached: a worker stuck in getaddrinfo when a signal comes is left behind; the
        // process ends soon after.
        std::thread::spawn(move || {
            if let Some(t) = &target {
                // This thread only: the namespace of a thread is its own.
                if let Err(e) = nix::sched::setns(t.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET) {
                    let fail = Failure {
                        code: libc::EAI_SYSTEM,
                        text: format!("cannot enter the socket namespace: {e}"),
                        transient: false,
                        attempts: 0,
                    };
                    loop {
                        let Some(i) = queue.lock().map(|mut q| q.pop()).ok().flatten() else {
                            return;
                        };
                        if tx.send((i, Err(fail.clone()))).is_err() {
                            return;
                        }
                    }
                }
            }
            loop {
                let Some(i) = queue.lock().map(|mut q| q.pop()).ok().flatten() else {
                    return;
                };
                let answer = lookup(&hosts[i], policy);
                if tx.send((i, answer)).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut left = hosts.len();
    while left > 0 {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((i, a)) => {
                answers[i] = Some(a);
                left -= 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    Some(
        answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    Err(Failure {
                        code: libc::EAI_SYSTEM,
                        text: "no answer".into(),
                        transient: true,
                        attempts: 0,
                    })
                })
            })
            .collect(),
    )
}

/// A child with its own mount namespace: `etc`'s files bound over /etc's, then the lookups in
/// threads; answers back on a pipe, one line each.
fn in_child(
    hosts: &[String],
    target: Option<&File>,
    etc: &Path,
    policy: Policy,
    stop: &AtomicBool,
) -> Option<Vec<Answer>> {
    use nix::unistd::{fork, pipe, ForkResult};
    let (read_end, write_end) = match pipe() {
        Ok(p) => p,
        Err(e) => {
            log::error!("cannot make a pipe for the resolver: {e}");
            return None;
        }
    };
    let parent = nix::unistd::getpid();
    // SAFETY: the child has only the forking thread. Resolver threads of an earlier, stopped
    // batch may still run in the parent; the one lock the child can meet that they hold is
    // malloc's, which glibc resets in the child of fork. The child touches no other state of
    // the parent's: it resolves, writes to its pipe and exits.
    match unsafe { fork() } {
        Err(e) => {
            log::error!("cannot start the resolver: {e}");
            None
        }
        Ok(ForkResult::Child) => {
            // The child holds the parent's descriptors, among them the interface's lock: it
            // must not outlive the parent (a killed up would leave the lock held by a resolver
            // retrying forever). SIGKILL when the parent dies, and a parent that died before
            // that was set is seen as a new parent.
            // SAFETY: prctl with integer arguments only.
            let set = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            if set != 0 || nix::unistd::getppid() != parent {
                // SAFETY: ends the child without running the parent's exit handlers.
                unsafe { libc::_exit(1) }
            }
            drop(read_end);
            let mut out = File::from(write_end);
            let code = match child_setup(etc) {
                Err(e) => {
                    let fail = Failure {
                        code: libc::EAI_SYSTEM,
                        text: e,
                        transient: false,
                        attempts: 0,
                    };
                    let lines: String = hosts.iter().map(|_| encode(&Err(fail.clone()))).collect();
                    let _ = out.write_all(lines.as_bytes());
                    1
                }
                Ok(()) => {
                    let never = AtomicBool::new(false);
                    let answers = in_threads(hosts, target, policy, &never).unwrap_or_default();
                    let lines: String = answers.iter().map(encode).collect();
                    let _ = out.write_all(lines.as_bytes());
                    0
                }
            };
            drop(out);
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            let answers = read_answers(File::from(read_end), hosts.len(), child, stop);
            if answers.is_none() {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = nix::sys::wait::waitpid(child, None);
            answers
        }
    }
}

/// In the child: a private mount namespace in which /etc/netns/NS/* is bound over /etc/*.
fn child_setup(etc: &Path) -> Result<(), String> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| {
        format!(
            "cannot take a private mount namespace for {}: {e}",
            etc.display()
        )
    })?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make / private: {e}"))?;
    let entries = std::fs::read_dir(etc).map_err(|e| format!("{}: {e}", etc.display()))?;
    for entry in entries.flatten() {
        let to = Path::new("/etc").join(entry.file_name());
        if !to.exists() {
            continue;
        }
        mount(
            Some(&entry.path()),
            &to,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            format!(
                "cannot bind {} on {}: {e}",
                entry.path().display(),
                to.display()
            )
        })?;
    }
    Ok(())
}

fn encode(a: &Answer) -> String {
    match a {
        Ok(addrs) => {
            let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            format!("ok {}\n", list.join(" "))
        }
        Err(f) => format!(
            "err {} {} {} {}\n",
            f.code,
            u8::from(f.transient),
            f.attempts,
            f.text.replace('\n', " ")
        ),
    }
}

fn decode(line: &str) -> Answer {
    let bad = || Failure {
        code: libc::EAI_SYSTEM,
        text: format!("bad answer from the resolver: {line}"),
        transient: false,
        attempts: 0,
    };
    match line.split_once(' ').unwrap_or((line, "")) {
        ("ok", rest) => Ok(rest
            .split_whitespace()
            .filter_map(|a| a.parse().ok())
            .collect()),
        ("err", rest) => {
            let mut parts = rest.splitn(4, ' ');
            let code = parts.next().and_then(|c| c.parse().ok()).ok_or_else(bad)?;
            let transient = parts.next() == Some("1");
            let attempts = parts.next().and_then(|c| c.parse().ok()).ok_or_else(bad)?;
            Err(Failure {
                code,
                transient,
                attempts,
                text: parts.next().unwrap_or("").to_string(),
            })
        }
        _ => Err(bad()),
    }
}

/// Reads the child's answers, checking `stop` every 100 ms.
fn read_answers(
    pipe: File,
    n: usize,
    child: nix::unistd::Pid,
    stop: &AtomicBool,
) -> Option<Vec<Answer>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut reader = BufReader::new(pipe);
    let mut answers = Vec::with_capacity(n);
    let mut line = String::new();
    while answers.len() < n {
        if reader.buffer().is_empty() {
            let mut fds = [PollFd::new(reader.get_ref().as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) => {
                    if stop.load(Ordering::SeqCst) {
                        return None;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    log::error!("waiting for the resolver (pid {child}): {e}");
                    return None;
                }
            }
        }
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => {
                log::error!(
                    "the resolver (pid {child}) ended after {} of {n} answers",
                    answers.len()
                );
                return None;
            }
            Ok(_) => answers.push(decode(line.trim_end())),
            Err(e) => {
                log::error!("reading the resolver's answers: {e}");
                return None;
            }
        }
    }
    Some(answers)
}

/// One name, retried as `policy` says.
fn lookup(host: &str, policy: Policy) -> Answer {
    let started = Instant::now();
    let mut delay = Duration::from_millis(200);
    let mut attempts: u64 = 0;
    loop {
        attempts += 1;
        match getaddrinfo(host) {
            Ok(addrs) => return Ok(addrs),
            Err((code, text)) => {
                let transient = code == libc::EAI_AGAIN;
                // Within a bound, the last wait is cut so that the last try lands on it.
                let wait = match policy {
                    Policy::Retries(n) => (attempts <= n).then_some(delay),
                    Policy::Bounded(bound) => {
                        let left = bound.saturating_sub(started.elapsed());
                        (transient && !left.is_zero()).then(|| delay.min(left))
                    }
                    Policy::Once => None,
                };
                let Some(wait) = wait else {
                    return Err(Failure {
                        code,
                        text,
                        transient,
                        attempts,
                    });
                };
                log::info!("resolving {host}: {text}; retrying in {wait:?}");
                std::thread::sleep(wait);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// getaddrinfo for UDP: every address, in the resolver's order, without repeats.
fn getaddrinfo(host: &str) -> Result<Vec<IpAddr>, (i32, String)> {
    let c_host = CString::new(host).map_err(|_| (libc::EAI_NONAME, "bad host".to_string()))?;
    // SAFETY: zeroed addrinfo is a valid "no hints" value; we set the fields we need.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_DGRAM;
    hints.ai_flags = libc::AI_ADDRCONFIG;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated strings and hints; res is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static string.
        let text = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
            .to_string_lossy()
            .into_owned();
        return Err((rc, text));
    }
    let mut out: Vec<IpAddr> = Vec::new();
    let mut cur = res;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getaddrinfo returned.
        let ai = unsafe { &*cur };
        let addr = match ai.ai_family {
            libc::AF_INET => {
                // SAFETY: AF_INET entries hold a sockaddr_in.
                let sa = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in) };
                Some(IpAddr::from(u32::from_be(sa.sin_addr.s_addr).to_be_bytes()))
            }
            libc::AF_INET6 => {
                // SAFETY: AF_INET6 entries hold a sockaddr_in6.
                let sa = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in6) };
                Some(IpAddr::from(sa.sin6_addr.s6_addr))
            }
            _ => None,
        };
        if let Some(a) = addr.filter(|a| !out.contains(a)) {
            out.push(a);
        }
        cur = ai.ai_next;
    }
    // SAFETY: res came from a successful getaddrinfo.
    unsafe { libc::freeaddrinfo(res) };
    match out.is_empty() {
        true => Err((libc::EAI_NONAME, "no IPv4 or IPv6 address".into())),
        false => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_cross_the_pipe_unchanged() {
        let answers: Vec<Answer> = vec![
            Ok(vec![
                "203.0.113.5".parse().unwrap(),
                "2001:db8::5".parse().unwrap(),
            ]),
            Err(Failure {
                code: libc::EAI_AGAIN,
                text: "Temporary failure in name resolution".into(),
                transient: true,
                attempts: 3,
            }),
        ];
        for a in &answers {
            assert_eq!(&decode(encode(a).trim_end()), a);
        }
    }

    #[test]
    fn localhost_resolves_in_threads() {
        let stop = AtomicBool::new(false);
        let got = resolve_all(&["localhost".into()], None, None, Policy::Once, &stop).unwrap();
        let addrs = got[0].as_ref().unwrap();
        assert!(addrs.iter().any(|a| a.is_loopback()), "{addrs:?}");
    }
}
