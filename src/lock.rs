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
                let mut holder = String::new();
                let _ = file.rewind();
                let _ = (&mut file).take(32).read_to_string(&mut holder);
                let holder = holder.trim();
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

/// The pid of the wg-exec working on `iface` now (holding its lock); None when none is, or when
/// the lock cannot be looked at. It holds the lock shared for an instant, waits for nothing and
/// writes nothing: for status, which only reads.
pub fn holder(dir: &Path, iface: &str) -> Option<String> {
    let handle = StateDir::open(dir, Access::Read).ok()??;
    let file = handle.peek_lock(&format!("{iface}.lock"))?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => None,
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut holder = String::new();
            let _ = (&mut file).take(32).read_to_string(&mut holder);
            let holder = holder.trim();
            Some(match holder.is_empty() {
                true => "?".to_string(),
                false => holder.to_string(),
            })
        }
        Err(_) => None,
    }
}
