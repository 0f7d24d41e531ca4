//! One operation per interface at a time: an exclusive flock on STATE_DIR/IFACE.lock, waited
//! for a bounded time. Different interfaces have different locks and never block each other.
//! The lock is opened through the state directory's handle, never following a link.

use crate::state::{Access, StateDir};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Held until dropped (or the process dies, when the kernel releases it). Dropping it removes
/// the lock file while still holding the lock; a waiter that then gets the lock on the removed
/// file notices (its inode is no longer the path's) and opens the path again.
pub struct Lock {
    file: Option<Flock<File>>,
    dir: StateDir,
    name: String,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.dir.remove(&self.name);
        drop(self.file.take());
    }
}

/// [`acquire_in`] the state directory at `dir` (which must exist and be trusted).
pub fn acquire(
    dir: &Path,
    iface: &str,
    wait: Duration,
    interrupted: &AtomicBool,
) -> Result<Lock, String> {
    let handle = StateDir::open(dir, Access::Change)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("there is no state directory {}", dir.display()))?;
    acquire_in(&handle, iface, wait, interrupted)
}

pub fn acquire_in(
    dir: &StateDir,
    iface: &str,
    wait: Duration,
    interrupted: &AtomicBool,
) -> Result<Lock, String> {
    let name = format!("{iface}.lock");
    let path = dir.path().join(&name);
    let deadline = Instant::now() + wait;
    let open = || dir.open_lock(&name);
    let mut file = open()?;
    let mut announced = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) if !dir.is_current(&*locked, &name) => {
                // The holder removed it as we got it: take the new one.
                drop(locked);
                file = open()?;
            }
            Ok(mut locked) => {
                // The holder's pid, for the message of whoever waits next.
                let _ = locked.set_len(0);
                let _ = locked.rewind();
                let _ = write!(locked, "{}", std::process::id());
                let dir = dir
                    .try_clone()
                    .map_err(|e| format!("cannot keep {} open: {e}", dir.path().display()))?;
                return Ok(Lock {
                    file: Some(locked),
                    dir,
                    name,
                });
            }
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
                file = f;
                let holder = named_pid(&file);
                if Instant::now() >= deadline {
                    return Err(format!(
                        "another wg-exec (pid {holder}) is working on {iface} and did not finish within {} s (lock {}); use --wait SECONDS to wait longer",
                        wait.as_secs(),
                        path.display()
                    ));
                }
                if interrupted.load(Ordering::SeqCst) {
                    return Err(format!("interrupted while waiting for the lock of {iface}"));
                }
                if !announced {
                    log::warn!("waiting for another wg-exec (pid {holder}) working on {iface}");
                    announced = true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err((_, e)) => return Err(format!("cannot lock {}: {e}", path.display())),
        }
    }
}

/// The pid a lock file names (what its holder wrote), "?" when it names none: a file's text is
/// never shown as it is.
fn named_pid(file: &File) -> String {
    let mut text = String::new();
    let mut file = file;
    let _ = file.rewind();
    let _ = file.take(32).read_to_string(&mut text);
    match text.trim().parse::<u32>() {
        Ok(pid) => pid.to_string(),
        Err(_) => "?".to_string(),
    }
}

/// The pid of the wg-exec working on `iface` now (holding its lock in `dir`); None when none
/// is, or when the lock cannot be looked at. See [`held`].
pub fn holder_in(dir: &StateDir, iface: &str) -> Option<String> {
    holder_of(&dir.open_existing(&format!("{iface}.lock"))?)
}

/// The pid of the process that holds the lock `file` now, as the file names it; None when
/// none holds it. See [`held`].
pub fn holder_of(file: &File) -> Option<String> {
    held(file).then(|| named_pid(file))
}

/// Whether another process holds the lock `file` now. It takes no lock, not even for an
/// instant (an acquirer that does not wait would take that instant for a holder): the file's
/// device and inode are looked up among the kernel's flocks in /proc/locks.
fn held(file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = file.metadata() else {
        return false;
    };
    let id = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(meta.dev()),
        nix::sys::stat::minor(meta.dev()),
        meta.ino()
    );
    let mut locks = String::new();
    // /proc/locks has a line per lock in the system: bounded, as everything read.
    match File::open("/proc/locks") {
        Ok(f) => {
            if f.take(64 << 20).read_to_string(&mut locks).is_err() {
                return false;
            }
        }
        Err(_) => return false,
    }
    held_in(&locks, &id)
}

/// Whether /proc/locks (`locks`) shows a granted exclusive flock on the file `id`
/// (MAJOR:MINOR:INODE, as the kernel writes it). A waiter's line ("-> FLOCK ...") is not one.
fn held_in(locks: &str, id: &str) -> bool {
    locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        matches!(f.as_slice(), [_, "FLOCK", _, "WRITE", _, file, ..] if *file == id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_seen_held_only_while_it_is_and_takes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StateDir::open(dir.path(), Access::Change).unwrap().unwrap();
        assert_eq!(holder_in(&handle, "wg0"), None, "no lock file");
        let never = AtomicBool::new(false);
        let held = acquire_in(&handle, "wg0", Duration::ZERO, &never).unwrap();
        assert_eq!(
            holder_in(&handle, "wg0"),
            Some(std::process::id().to_string())
        );
        // Looking took nothing: an acquirer that does not wait is refused by the holder only.
        assert!(acquire_in(&handle, "wg0", Duration::ZERO, &never).is_err());
        drop(held);
        assert_eq!(holder_in(&handle, "wg0"), None, "released");
        // A stale lock file (a killed holder) is no holder; its text is never shown as it is.
        std::fs::write(dir.path().join("wg0.lock"), "\x1b[2Jhello").unwrap();
        assert_eq!(holder_in(&handle, "wg0"), None);
        let file = handle.open_lock("wg0.lock").unwrap();
        let locked = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| e)
            .unwrap();
        assert_eq!(holder_in(&handle, "wg0"), Some("?".to_string()));
        drop(locked);
    }

    #[test]
    fn only_a_granted_exclusive_flock_on_that_file_counts() {
        let locks = "1: FLOCK  ADVISORY  WRITE 411 00:19:1234 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 412 00:19:1234 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 99 00:19:5678 0 EOF\n\
                     3: FLOCK  ADVISORY  READ 98 00:19:9999 0 EOF\n";
        assert!(held_in(locks, "00:19:1234"));
        assert!(!held_in(locks, "00:19:12345"));
        assert!(
            !held_in(locks, "00:19:5678"),
            "a POSIX lock is not wg-exec's"
        );
        assert!(
            !held_in(locks, "00:19:9999"),
            "a shared flock is not wg-exec's"
        );
        assert!(!held_in(
            "1: -> FLOCK  ADVISORY  WRITE 412 00:19:1 0 EOF",
            "00:19:1"
        ));
    }
}
