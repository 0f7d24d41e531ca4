//! The state directory (journals, records, locks) as a handle: opened without following a
//! symbolic link, its owner and mode checked, and every file in it reached through it (openat,
//! O_NOFOLLOW, temporaries O_EXCL, modes 0700 and 0600 whatever the umask).
//!
//! Why: the journal is a plan that `down` executes with wg-exec's capabilities, and in the
//! non-root setup the directory belongs to the unit user, which the userspace daemon (parsing
//! packets from the Internet) also runs as. A directory or file that the user running wg-exec
//! does not own, or that group or others may write, could hold anything: commands that change
//! the system refuse it; read-only ones (status, `down --print`) read it with a warning.
//!
//! The handle is opened once per command (the lock is taken through it); the journal and record
//! functions that take a path open the path's directory again with the same checks, so every
//! access is checked, and the only way to swap the directory between two opens is to write its
//! parent (/var/lib: root's).

use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, Uid, UnlinkatFlags};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The most a journal or a record may hold: ten times a record of 10,000 peers with names and
/// host-name endpoints (3.4 MB, measured by the test `a_record_of_ten_thousand_peers_fits_the_cap`;
/// 2.4 MB without names); a journal holds no peers.
pub const MAX_FILE: u64 = 32 << 20;

/// Whether a command may act on what it reads, or only show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// up, down, reload, refresh: an untrusted directory or file is refused.
    Change,
    /// status, `down --print`: read with a warning, never acted on.
    Read,
}

/// Why a file or directory of the state is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    /// Owner, mode or type that wg-exec did not make: the message names path, owner, mode and
    /// the fix.
    Untrusted(String),
    /// Too big, unreadable, …
    Io(String),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Untrusted(m) | StateError::Io(m) => f.write_str(m),
        }
    }
}

fn errno_io(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("{uid} ({})", u.name),
        _ => uid.to_string(),
    }
}

/// Why `st` (the state directory, or a file in it) is not to be trusted by the effective user:
/// another owner, group- or other-writable, a file that is not a regular one or has another
/// name (a hard link).
pub fn distrust(path: &Path, st: &FileStat, dir: bool) -> Option<String> {
    let me = nix::unistd::geteuid().as_raw();
    let mode = st.st_mode & 0o7777;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let what = if dir { "directory" } else { "file" };
    let fix = if dir {
        format!(
            "run wg-exec as its owner, or, after checking what it holds, give it to uid {} with mode 0700 (chown {me} {p}; chmod 0700 {p})",
            user_name(me),
            p = path.display()
        )
    } else {
        format!(
            "after checking it, remove it, or, if it is wg-exec's, give it to uid {} with mode 0600",
            user_name(me)
        )
    };
    let wanted = if dir { SFlag::S_IFDIR } else { SFlag::S_IFREG };
    if kind != wanted {
        return Some(format!(
            "the state {what} {} is not a {} (mode {:o}): {fix}",
            path.display(),
            if dir { "directory" } else { "regular file" },
            st.st_mode
        ));
    }
    if st.st_uid != me {
        return Some(format!(
            "the state {what} {} belongs to uid {}, mode {mode:04o}, not to uid {} which runs wg-exec: what it holds could have been written by that user; {fix}",
            path.display(),
            user_name(st.st_uid),
            user_name(me)
        ));
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "the state {what} {} (owner uid {}) has mode {mode:04o}: group or others may write it; {fix}",
            path.display(),
            user_name(st.st_uid)
        ));
    }
    if !dir && st.st_nlink != 1 {
        return Some(format!(
            "the state file {} (owner uid {}, mode {mode:04o}) has {} names (a hard link): {fix}",
            path.display(),
            user_name(st.st_uid),
            st.st_nlink
        ));
    }
    None
}

/// An open state directory.
#[derive(Debug)]
pub struct StateDir {
    fd: OwnedFd,
    path: PathBuf,
    /// Why it is not trusted (only with [`Access::Read`]).
    pub untrusted: Option<String>,
    access: Access,
}

fn open_dir_fd(path: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
}

impl StateDir {
    /// The state directory for a command that changes the system: created 0700 when missing
    /// (its parents as usual), refused when it is not the effective user's or others may write
    /// it. One of ours with group or other bits (an older wg-exec made it 0755) is made 0700.
    pub fn create(path: &Path) -> Result<StateDir, StateError> {
        let io = |what: &str, e: nix::errno::Errno| {
            StateError::Io(format!("cannot {what} {}: {}", path.display(), errno_io(e)))
        };
        // Anything but a missing directory (a link, a file, no permission) is for `open` to
        // name.
        if let Err(nix::errno::Errno::ENOENT) = open_dir_fd(path) {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .ok_or_else(|| StateError::Io(format!("{} names no directory", path.display())))?;
            if !parent.is_dir() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StateError::Io(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let pfd = open_dir_fd(parent).map_err(|e| io("open the parent of", e))?;
            match mkdirat(&pfd, name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(io("create", e)),
            }
        }
        let dir = StateDir::open(path, Access::Change)?
            .ok_or_else(|| StateError::Io(format!("{} vanished", path.display())))?;
        let st = fstat(&dir.fd).map_err(|e| io("read", e))?;
        if st.st_mode & 0o077 != 0 {
            fchmod(&dir.fd, Mode::from_bits_truncate(0o700))
                .map_err(|e| io("set the mode of", e))?;
        }
        Ok(dir)
    }

    /// Opens an existing state directory; None when it does not exist. With [`Access::Change`]
    /// an untrusted one is an error; with [`Access::Read`] it is opened with a warning.
    pub fn open(path: &Path, access: Access) -> Result<Option<StateDir>, StateError> {
        let fd = match open_dir_fd(path) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR) => {
                return Err(StateError::Untrusted(format!(
                    "the state directory {} is a symbolic link or not a directory: make it a directory of wg-exec's user, mode 0700",
                    path.display()
                )))
            }
            Err(e) => {
                return Err(StateError::Io(format!(
                    "cannot open the state directory {}: {}",
                    path.display(),
                    errno_io(e)
                )))
            }
        };
        let st = fstat(&fd).map_err(|e| {
            StateError::Io(format!("cannot read {}: {}", path.display(), errno_io(e)))
        })?;
        let untrusted = distrust(path, &st, true);
        match (untrusted, access) {
            (Some(why), Access::Change) => Err(StateError::Untrusted(why)),
            (untrusted, _) => {
                if let Some(why) = &untrusted {
                    warn(why);
                }
                Ok(Some(StateDir {
                    fd,
                    path: path.to_path_buf(),
                    untrusted,
                    access,
                }))
            }
        }
    }

    /// The directory and the name of `file` in it (a path of a journal or record).
    pub fn of_file(file: &Path, access: Access) -> Result<Option<(StateDir, String)>, StateError> {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| StateError::Io(format!("{} names no file", file.display())))?
            .to_string();
        let dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Ok(StateDir::open(dir, access)?.map(|d| (d, name)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn try_clone(&self) -> std::io::Result<StateDir> {
        Ok(StateDir {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
            untrusted: self.untrusted.clone(),
            access: self.access,
        })
    }

    fn raw(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `name`'s contents, at most [`MAX_FILE`] bytes; None when there is no such file. The file
    /// is opened without following a link or blocking on a FIFO and must be a regular file of
    /// the effective user that group and others cannot write (with [`Access::Read`]: warned).
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.path.join(name);
        let io = |e: std::io::Error| StateError::Io(format!("cannot read {}: {e}", path.display()));
        let fd = match openat(
            self.raw(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(nix::errno::Errno::ELOOP) => {
                return Err(StateError::Untrusted(format!(
                    "the state file {} is a symbolic link: wg-exec writes none; remove it after checking where it points",
                    path.display()
                )))
            }
            Err(e) => return Err(io(errno_io(e))),
        };
        let mut file = File::from(fd);
        let st = fstat(&file).map_err(|e| io(errno_io(e)))?;
        if let Some(why) = distrust(&path, &st, false) {
            let regular =
                SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG;
            match (self.access, regular) {
                (Access::Read, true) => warn(&why),
                _ => return Err(StateError::Untrusted(why)),
            }
        }
        if st.st_size < 0 || st.st_size as u64 > MAX_FILE {
            return Err(StateError::Io(format!(
                "{} holds {} bytes, more than the {MAX_FILE} a journal or record may have",
                path.display(),
                st.st_size
            )));
        }
        let mut out = Vec::with_capacity(st.st_size as usize);
        (&mut file)
            .take(MAX_FILE + 1)
            .read_to_end(&mut out)
            .map_err(io)?;
        if out.len() as u64 > MAX_FILE {
            return Err(StateError::Io(format!(
                "{} holds more than the {MAX_FILE} bytes a journal or record may have",
                path.display()
            )));
        }
        Ok(Some(out))
    }

    fn must_change(&self) -> std::io::Result<()> {
        match (&self.untrusted, self.access) {
            (None, Access::Change) => Ok(()),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{} was opened to be read only: wg-exec changes nothing in it",
                    self.path.display()
                ),
            )),
        }
    }

    /// Writes `name` atomically: a new temporary file (O_EXCL, O_NOFOLLOW, 0600), fsync,
    /// rename over `name`.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.must_change()?;
        let tmp = format!(".{name}.tmp-{}", std::process::id());
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o600);
        let fd = match openat(self.raw(), tmp.as_str(), flags, mode) {
            // A temporary of an earlier process with this pid (killed while writing).
            Err(nix::errno::Errno::EEXIST) => {
                unlinkat(self.raw(), tmp.as_str(), UnlinkatFlags::NoRemoveDir).map_err(errno_io)?;
                openat(self.raw(), tmp.as_str(), flags, mode)
            }
            other => other,
        }
        .map_err(errno_io)?;
        let mut f = File::from(fd);
        let written = (|| {
            // The umask may have taken bits from 0600, never added any; 0600 exactly.
            fchmod(&f, mode).map_err(errno_io)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            renameat(self.raw(), tmp.as_str(), self.raw(), name).map_err(errno_io)
        })();
        if written.is_err() {
            let _ = unlinkat(self.raw(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        written
    }

    /// Removes `name`; a missing one is fine.
    pub fn remove(&self, name: &str) -> std::io::Result<()> {
        self.must_change()?;
        match unlinkat(self.raw(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(errno_io(e)),
        }
    }

    /// Renames `from` to `to`, both in this directory.
    pub fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        self.must_change()?;
        renameat(self.raw(), from, self.raw(), to).map_err(errno_io)
    }

    /// Opens (creating, 0600) the lock file `name` for reading and writing, without following
    /// a link; one that is not a regular file of the effective user is refused.
    pub fn open_lock(&self, name: &str) -> Result<File, String> {
        self.must_change().map_err(|e| e.to_string())?;
        let path = self.path.join(name);
        let fd = openat(
            self.raw(),
            name,
            OFlag::O_RDWR
                | OFlag::O_CREAT
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC
                | OFlag::O_NONBLOCK,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| match e {
            nix::errno::Errno::ELOOP => format!(
                "the lock {} is a symbolic link: wg-exec makes none; remove it after checking where it points",
                path.display()
            ),
            e => format!("cannot open lock {}: {}", path.display(), errno_io(e)),
        })?;
        let file = File::from(fd);
        let st = fstat(&file)
            .map_err(|e| format!("cannot read lock {}: {}", path.display(), errno_io(e)))?;
        if let Some(why) = distrust(&path, &st, false) {
            return Err(why);
        }
        // 0600 whatever the umask (it holds only a pid, but nothing here is for others).
        if st.st_mode & 0o7777 != 0o600 {
            fchmod(&file, Mode::from_bits_truncate(0o600)).map_err(|e| {
                format!("cannot set the mode of {}: {}", path.display(), errno_io(e))
            })?;
        }
        Ok(file)
    }

    /// Opens the existing file `name` to look at it (read only, never following a link or
    /// blocking, never creating it); None when there is none, or it is not a regular file.
    pub fn open_existing(&self, name: &str) -> Option<File> {
        let fd = openat(
            self.raw(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .ok()?;
        let file = File::from(fd);
        let st = fstat(&file).ok()?;
        (SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG)
            .then_some(file)
    }

    /// Whether `file` is still the file named `name` here.
    pub fn is_current(&self, file: &impl AsFd, name: &str) -> bool {
        match (
            fstat(file.as_fd()),
            fstatat(self.raw(), name, AtFlags::AT_SYMLINK_NOFOLLOW),
        ) {
            (Ok(a), Ok(b)) => a.st_ino == b.st_ino && a.st_dev == b.st_dev,
            _ => false,
        }
    }
}

/// Which version of a state file is on disk. wg-exec replaces a state file by renaming a new
/// file over it, so the inode tells a new version even when the modification time does not
/// (two writes within one tick of the file system's clock). None: there is no such file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    len: u64,
}

pub fn version(path: &Path) -> Option<Version> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    Some(Version {
        dev: m.dev(),
        ino: m.ino(),
        mtime: (m.mtime(), m.mtime_nsec()),
        len: m.len(),
    })
}

fn warn(why: &str) {
    crate::journald::line(
        crate::journald::Priority::Warning,
        &format!("wg-exec: warning: {why}; read only, nothing in it is acted on"),
    );
}

/// Interface names whose state files could be another interface's: `x.applied` would read and
/// replace x's record (x.applied.ron), `x.applied-next` the record of x's reload. Refused
/// rather than given a directory each, so that the layout (IFACE.ron beside IFACE.lock) that
/// scripts, tests and people know stays as it is.
pub fn check_name(iface: &str) -> Result<(), String> {
    for suffix in [".applied", ".applied-next"] {
        if let Some(other) = iface.strip_suffix(suffix) {
            return Err(format!(
                "`{iface}` ends in `{suffix}`: its journal would be the state file of the interface `{other}` ({iface}.ron); choose another name"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn a_new_directory_is_0700_and_files_0600_whatever_the_umask() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("state");
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
        let dir = StateDir::create(&path);
        nix::sys::stat::umask(old);
        let dir = dir.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&path), 0o700);
        dir.write_atomic("wg0.ron", b"x").unwrap();
        assert_eq!(mode(&path.join("wg0.ron")), 0o600);
        assert_eq!(dir.read("wg0.ron").unwrap().unwrap(), b"x");
        // No temporary is left.
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 1);
    }

    #[test]
    fn a_state_directory_that_is_a_symlink_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let real = base.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = base.path().join("state");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = StateDir::create(&link).unwrap_err();
        assert!(
            matches!(&e, StateError::Untrusted(m) if m.contains("is a symbolic link")),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
    }

    #[test]
    fn an_older_0755_directory_of_ours_is_made_0700() {
        let base = tempfile::tempdir().unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        StateDir::create(base.path()).unwrap();
        let m = std::fs::metadata(base.path()).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o700);
    }

    #[test]
    fn a_group_writable_directory_is_refused_for_change_and_read_with_a_warning() {
        let base = tempfile::tempdir().unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o770)).unwrap();
        let err = StateDir::create(base.path()).unwrap_err();
        let StateError::Untrusted(m) = err else {
            panic!("{err}")
        };
        assert!(m.contains("mode 0770: group or others may write it"), "{m}");
        assert!(m.contains(&base.path().display().to_string()), "{m}");
        assert!(m.contains("chmod 0700"), "{m}");
        let ro = StateDir::open(base.path(), Access::Read).unwrap().unwrap();
        assert!(ro.untrusted.is_some());
        assert!(ro.write_atomic("x", b"y").is_err());
        assert!(!base.path().join("x").exists());
    }

    #[test]
    fn symlinks_hard_links_and_fifos_are_not_state_files() {
        let base = tempfile::tempdir().unwrap();
        let dir = StateDir::create(base.path()).unwrap();
        let target = base.path().join("target");
        std::fs::write(&target, "1").unwrap();
        std::os::unix::fs::symlink(&target, base.path().join("wg0.ron")).unwrap();
        assert!(matches!(
            dir.read("wg0.ron"),
            Err(StateError::Untrusted(m)) if m.contains("symbolic link")
        ));
        std::os::unix::fs::symlink(&target, base.path().join("wg0.lock")).unwrap();
        let e = dir.open_lock("wg0.lock").unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        std::fs::hard_link(&target, base.path().join("wg1.ron")).unwrap();
        assert!(matches!(
            dir.read("wg1.ron"),
            Err(StateError::Untrusted(m)) if m.contains("hard link")
        ));
        nix::unistd::mkfifo(&base.path().join("wg2.ron"), Mode::S_IRWXU).unwrap();
        assert!(matches!(
            dir.read("wg2.ron"),
            Err(StateError::Untrusted(m)) if m.contains("not a regular file")
        ));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "1");
        assert_eq!(std::fs::metadata(&target).unwrap().nlink(), 2);
    }

    #[test]
    fn a_file_over_the_cap_is_not_read() {
        let base = tempfile::tempdir().unwrap();
        let dir = StateDir::create(base.path()).unwrap();
        let f = File::create(base.path().join("big.ron")).unwrap();
        f.set_len(MAX_FILE + 1).unwrap();
        std::fs::set_permissions(
            base.path().join("big.ron"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let e = dir.read("big.ron").unwrap_err();
        assert!(e.to_string().contains("more than the"), "{e}");
    }

    /// The cap leaves room: a record of 10,000 peers, each with a name, a host-name endpoint
    /// (so a refresh entry too) and two routes, is measured against it.
    #[test]
    fn a_record_of_ten_thousand_peers_fits_the_cap() {
        let mut text = String::from(
            "Interface(ips: [\"192.0.2.1/24\", \"2001:db8:1::1/64\"], private_key_file: \"/etc/wg-exec/keys/wg0.key\", listen_port: 51820, peers: [\n",
        );
        for i in 0u32..10_000 {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_be_bytes());
            b[31] = 0x5a;
            let key = wg_exec_steps::Key::from_bytes(b, false).to_base64();
            text.push_str(&format!(
                "Peer(name: \"peer-number-{i}\", public_key: \"{key}\", allowed_ips: [\"198.{}.{}.{}/32\", \"2001:db8:4::{i:x}/128\"], endpoint: \"peer{i}.example.test:51820\"),\n",
                18 + (i >> 16),
                (i >> 8) & 255,
                i & 255,
            ));
        }
        text.push_str("])\n");
        let (cfg, _) = crate::config::parse(
            "wg0",
            Path::new("wg0.ron"),
            &text,
            &crate::config::RouteTables::builtin(),
        )
        .unwrap();
        let applied = crate::journal::applied::Applied::of(&cfg);
        let bytes = ron::ser::to_string_pretty(&applied, Default::default())
            .unwrap()
            .len() as u64;
        eprintln!("a record of 10,000 peers: {bytes} bytes");
        assert!(bytes > 1_000_000 && bytes * 8 < MAX_FILE, "{bytes}");
        let base = tempfile::tempdir().unwrap();
        let dir = StateDir::create(base.path()).unwrap();
        let path = base.path().join("wg0.applied.ron");
        crate::journal::applied::save(&path, &applied).unwrap();
        assert_eq!(
            crate::journal::applied::load(&path).unwrap().unwrap(),
            applied
        );
        drop(dir);
    }

    #[test]
    fn names_that_are_another_interfaces_state_files_are_refused() {
        assert!(check_name("wg0").is_ok());
        assert!(check_name("wg.home").is_ok());
        let e = check_name("x.applied").unwrap_err();
        assert!(e.contains("the interface `x`"), "{e}");
        assert!(check_name("x.applied-next").is_err());
    }
}
