//! Network namespaces as file descriptors. A namespace is entered only long enough to open a
//! socket or start a process in it; a guard brings the thread back even on early return.

use nix::sched::{setns, CloneFlags};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;
use wg_exec_steps::{KernelError, Netns};

use crate::preflight::NETNS_DIR;

/// The file that names a namespace.
pub fn path(ns: &Netns) -> PathBuf {
    match ns {
        Netns::Current => PathBuf::from("/proc/thread-self/ns/net"),
        Netns::Init => PathBuf::from("/proc/1/ns/net"),
        Netns::Named(n) => PathBuf::from(NETNS_DIR).join(n),
    }
}

pub fn open(ns: &Netns) -> Result<File, KernelError> {
    File::open(path(ns)).map_err(|e| {
        let mut k = KernelError::from_io(&e);
        k.message = format!("cannot open {} ({}): {e}", ns, path(ns).display());
        k
    })
}

/// Whether two namespace files are the same namespace.
pub fn same(a: &File, b: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (a.metadata(), b.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether `ns` is the namespace this thread is in (`ip netns exec x wg-exec` with
/// `socket_namespace: "x"`, or PID 1's when wg-exec runs there): such a namespace is never
/// entered, and needs no capability to enter.
pub fn is_current(ns: &Netns) -> bool {
    match ns {
        Netns::Current => true,
        other => match (open(other), File::open("/proc/thread-self/ns/net")) {
            (Ok(a), Ok(b)) => same(&a, &b),
            _ => false,
        },
    }
}

/// While alive, the calling thread is in another network namespace; dropping it returns.
pub struct Entered<'a> {
    home: &'a File,
}

impl<'a> Entered<'a> {
    /// Enters `target` unless it is `home` already (then nothing happens: setns needs
    /// CAP_SYS_ADMIN even into the namespace one is in).
    pub fn enter(target: &File, home: &'a File) -> Result<Option<Entered<'a>>, KernelError> {
        if same(target, home) {
            return Ok(None);
        }
        setns(target.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| KernelError::from_errno(e as i32, Some("setns")))?;
        Ok(Some(Entered { home }))
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Err(e) = setns(self.home.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Staying in the wrong namespace would make every later request act on the wrong
            // machine: stop here rather than go on.
            eprintln!("wg-exec: cannot return to the original network namespace: {e}");
            std::process::abort();
        }
    }
}
