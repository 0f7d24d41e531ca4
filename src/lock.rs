//! One operation per interface at a time: an exclusive flock on STATE_DIR/IFACE.lock, waited
//! for a bounded time. Different interfaces have different locks and never block each other.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Held until dropped (or the process dies, when the kernel releases it). Dropping it removes
/// the lock file while still holding the lock; a waiter that then gets the lock on the removed
/// file notices (its inode is no longer the path's) and opens the path again.
pub struct Lock {
    file: Option<Flock<File>>,
    path: std::path::PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

/// Whether `file` is still the file at `path`.
fn is_current(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

pub fn acquire(
    dir: &Path,
    iface: &str,
    wait: Duration,
    interrupted: &AtomicBool,
) -> Result<Lock, String> {
    let path = dir.join(format!("{iface}.lock"));
    let deadline = Instant::now() + wait;
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open lock {}: {e}", path.display()))
    };
    let mut file = open()?;
    let mut announced = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) if !is_current(&locked, &path) => {
                // The holder removed it as we got it: take the new one.
                drop(locked);
                file = open()?;
            }
            Ok(mut locked) => {
                // The holder's pid, for the message of whoever waits next.
                let _ = locked.set_len(0);
                let _ = locked.rewind();
                let _ = write!(locked, "{}", std::process::id());
                return Ok(Lock {
                    file: Some(locked),
                    path,
                });
            }
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
                file = f;
                let mut holder = String::new();
                let _ = file.rewind();
                let _ = file.read_to_string(&mut holder);
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
