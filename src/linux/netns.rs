//! Network namespaces as file descriptors. A namespace is entered only long enough to open a
//! socket or start a process in it; a guard brings the thread back even on early return.

use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::statfs::fstatfs;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use wg_exec_steps::{KernelError, Netns};

use crate::journal::vet::namespace_name as check_name;
use crate::preflight::NETNS_DIR;

/// The file that names a namespace.
pub fn path(ns: &Netns) -> PathBuf {
    match ns {
        Netns::Current => PathBuf::from("/proc/thread-self/ns/net"),
        Netns::Init => PathBuf::from("/proc/1/ns/net"),
        Netns::Named(n) => PathBuf::from(NETNS_DIR).join(n),
    }
}

/// `nsfs`, the file system of namespace files (`statfs(2)`).
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Opens a namespace's file. A named one must be a plain name in /run/netns; it is opened
/// without following a symbolic link, without blocking (a FIFO put there does not hang
/// wg-exec), and is refused unless it is a namespace file (nsfs), so that nothing else is ever
/// handed to setns.
pub fn open(ns: &Netns) -> Result<File, KernelError> {
    let named = match ns {
        Netns::Named(n) => {
            check_name(n).map_err(|m| KernelError::new(format!("cannot open {ns}: {m}")))?;
            true
        }
        _ => false,
    };
    // The files in /proc are symbolic links by nature; the name in /run/netns is not.
    open_nsfs(&path(ns), named).map_err(|mut k| {
        k.message = format!("cannot open {} ({}): {}", ns, path(ns).display(), k.message);
        k
    })
}

/// Opens `file` read-only, close-on-exec and without blocking (not following a last symbolic
/// link when `nofollow`), and keeps it only when it is a namespace file.
fn open_nsfs(file: &Path, nofollow: bool) -> Result<File, KernelError> {
    let mut flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    if nofollow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let fd = nix::fcntl::open(file, flags, Mode::empty())
        .map_err(|e| KernelError::from_errno(e as i32, None))?;
    let kind = fstatfs(&fd)
        .map_err(|e| KernelError::from_errno(e as i32, Some("fstatfs")))?
        .filesystem_type();
    if kind.0 as i64 != NSFS_MAGIC {
        return Err(KernelError::new(format!(
            "it is not a namespace file (file system {:#x}, not nsfs)",
            kind.0
        )));
    }
    Ok(File::from(fd))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_name_is_one_plain_file_name() {
        for good in ["a", "wg-ns.1", "init", "..a", "a..", &"n".repeat(255)] {
            check_name(good).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "../../dev/null",
            "/tmp/fifo",
            "a/b",
            "a\0",
            &"n".repeat(256),
        ] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e, format!("{bad:?} is not a namespace name"));
        }
    }

    #[test]
    fn a_name_that_leaves_run_netns_is_refused_before_any_open() {
        for bad in ["../../dev/null", "/dev/null", "..", ""] {
            let e = open(&Netns::Named(bad.into())).unwrap_err();
            assert!(
                e.message.contains("is not a namespace name"),
                "{}",
                e.message
            );
            assert_eq!(e.errno, None);
        }
    }

    #[test]
    fn only_a_namespace_file_is_kept_and_a_fifo_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        for f in [&fifo, &plain, Path::new("/dev/null")] {
            let e = open_nsfs(f, true).unwrap_err();
            assert!(
                e.message.contains("is not a namespace file"),
                "{}",
                e.message
            );
        }
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/proc/thread-self/ns/net", &link).unwrap();
        assert_eq!(open_nsfs(&link, true).unwrap_err().errno, Some(libc::ELOOP));
        // This thread's own namespace is one.
        open(&Netns::Current).unwrap();
    }
}
