//! `wg-exec status IFACE`: the frame of the status wing ([`crate::status`]): loads the journal,
//! the record and the configuration, reads the live interface, and prints the model with its
//! drift. Never shows a secret; takes no lock (it only reads), and reads while no other
//! wg-exec holds it.

use super::{load, Session};
use crate::cli::StatusArgs;
use crate::config;
use crate::config::derived::{interface_ns, socket_ns};
use crate::journal::{self, applied};
use crate::lock;
use crate::outcome::Outcome;
use crate::plan::reload;
use crate::state;
use crate::status::{self, drift, render};
use nix::sys::stat::{fstat, FileStat};
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};
use wg_exec_steps::Needs;

/// How long status waits for another wg-exec working on the interface to finish.
const BUSY_WAIT: Duration = Duration::from_secs(10);
/// How many times status reads again when the interface changed while it read.
const READS: usize = 3;

pub fn run(a: &StatusArgs) -> Outcome {
    let name = a.iface.as_str();
    if let Err(m) = config::check_interface_name(name).and_then(|_| state::check_name(name)) {
        return Outcome::Invalid(vec![format!("interface name (command line): {m}")]);
    }
    let dir = journal::state_dir();
    let jpath = journal::path_for(&dir, name);
    let apath = applied::path_for(&dir, name);
    // It takes no lock, so it reads a consistent picture another way: never while another
    // wg-exec holds the interface's lock (a reload half done is not drift), and again when
    // another wg-exec took the lock or replaced the journal or the record while it read. A hook
    // of the wg-exec that holds it (`post_up: wg-exec status ...`) reads at once, as it always
    // did: waiting would be for itself.
    let handle = state::StateDir::open(&dir, state::Access::Read)
        .ok()
        .flatten();
    let busy = |h: &state::StateDir| lock::holder_in(h, name).filter(|pid| !ancestor(pid));
    let Some(h) = &handle else {
        // No state directory (or none it can open): the reading says why.
        return show(a, read(a, name, &dir, &jpath));
    };
    let waited_for = Instant::now() + BUSY_WAIT;
    for _ in 0..READS {
        while let Some(pid) = busy(h) {
            if Instant::now() >= waited_for {
                return Outcome::Unknown(format!(
                    "another wg-exec (pid {pid}) has been working on {name} for over {} s; status cannot tell until it finishes",
                    BUSY_WAIT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let pinned = Pinned::of(h, name, [&jpath, &apath]);
        let read = read(a, name, &dir, &jpath);
        if pinned.disturbed() {
            // Reading again needs a lookup in the state directory, which root, its privileges
            // given up for the read, cannot do in another user's.
            if state::version(&jpath).is_none() {
                return Outcome::Unknown(format!(
                    "another wg-exec worked on {name} while status read it, and status cannot read {} again with the privileges it has left; run it again",
                    dir.display()
                ));
            }
            log::debug!("{name} changed while status read it: reading again");
            continue;
        }
        return show(a, read);
    }
    Outcome::Unknown(format!(
        "{name} changed each of the {READS} times status read it; try again"
    ))
}

/// Prints a reading; its outcome (in sync or drifted) or why there is none.
fn show(a: &StatusArgs, read: Result<status::Status, Outcome>) -> Outcome {
    let status = match read {
        Ok(status) => status,
        Err(o) => return o,
    };
    match a.json {
        true => println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("plain data serializes")
        ),
        false => print!("{}", render::text(&status)),
    }
    match status.drift.is_empty() {
        true => Outcome::Done,
        false => Outcome::Drifted(status.drift),
    }
}

/// The state files as they were when a reading began, held open: whether another wg-exec took
/// the lock or replaced the journal or the record meanwhile (every writer renames a new file
/// over the old one, which is left with no link) is told from these descriptors, without
/// looking a name up again (status gives up the privileges that a lookup in another user's
/// state directory needs). A lock file made later belongs to an operation that replaces the
/// journal before it changes anything.
struct Pinned {
    files: Vec<(File, Option<FileStat>)>,
    lock: Option<File>,
}

impl Pinned {
    /// `paths`: the journal's and the record's, in `dir`.
    fn of(dir: &state::StateDir, name: &str, paths: [&Path; 2]) -> Pinned {
        let files = paths
            .iter()
            .filter_map(|p| dir.open_existing(p.file_name()?.to_str()?))
            .map(|f| {
                let st = fstat(&f).ok();
                (f, st)
            })
            .collect();
        Pinned {
            files,
            lock: dir.open_existing(&format!("{name}.lock")),
        }
    }

    fn disturbed(&self) -> bool {
        let moved = |a: &FileStat, b: &FileStat| {
            (a.st_nlink, a.st_size, a.st_mtime, a.st_mtime_nsec)
                != (b.st_nlink, b.st_size, b.st_mtime, b.st_mtime_nsec)
        };
        self.files
            .iter()
            .any(|(f, before)| match (before, fstat(f)) {
                (Some(b), Ok(now)) => moved(b, &now) || now.st_nlink == 0,
                _ => true,
            })
            || self
                .lock
                .as_ref()
                .and_then(lock::holder_of)
                .is_some_and(|pid| !ancestor(&pid))
    }
}

/// Whether `pid` (a lock's holder) is this process or one of its ancestors.
fn ancestor(pid: &str) -> bool {
    let Ok(wanted) = pid.parse::<i32>() else {
        return false;
    };
    let mut at = std::process::id() as i32;
    for _ in 0..64 {
        if at == wanted {
            return true;
        }
        match crate::linux::daemon::state_and_parent(at) {
            Some((_, parent)) if parent > 0 => at = parent,
            _ => return false,
        }
    }
    false
}

/// One reading: the journal, the record, the configuration and the live interface, and the
/// drift between them.
fn read(a: &StatusArgs, name: &str, dir: &Path, jpath: &Path) -> Result<status::Status, Outcome> {
    // Status only reads: an untrusted state directory is read with a warning, but the
    // configuration file its journal names is not followed.
    let trusted = state::StateDir::open(dir, state::Access::Change).is_ok();
    let journal = match journal::peek_read_only(jpath) {
        Ok(Some(j)) if j.is_up() => j,
        Ok(Some(_)) => return Err(Outcome::NotUp("an up did not finish; it is not up".into())),
        Ok(None) => {
            return Err(Outcome::NotUp(format!(
                "it is not up (no journal {})",
                jpath.display()
            )))
        }
        Err(u) => return Err(Outcome::Unknown(format!("{u}"))),
    };
    let apath = applied::path_for(dir, name);
    let recorded = applied::load_read_only(&apath)
        .map_err(Outcome::Unknown)?
        .ok_or_else(|| {
            Outcome::Unknown(format!(
                "there is no record of what up applied ({})",
                apath.display()
            ))
        })?;
    // The configuration, when it loads; its problems are shown as drift, not as a failure.
    let file = a
        .config
        .clone()
        .or_else(|| trusted.then(|| journal.config.clone()));
    let cfg = load(name, file.as_deref()).ok();
    let link_ns = recorded.interface_namespace.clone();
    let mut needs = Needs::namespaces([&link_ns]);
    if let Some(c) = &cfg {
        // It reads the device and plans a reload (never runs one): the namespaces, nothing else.
        needs.add(Needs::namespaces([&socket_ns(c), &interface_ns(c)]));
    }
    // Status only reads: a session without the lock.
    let session = Session::open_unlocked(name)?;
    let (mut kernel, _) = session.kernel_for(&needs)?;
    // Read-only: a stale socket is reported, never removed.
    kernel.set_read_only();
    // The backend and the daemon the journal recorded: only that daemon's socket is used.
    journal::recovery::expect_userspace(&journal, &mut kernel);
    let live = reload::read_live(&mut kernel, &link_ns, name)
        .map_err(|e| Outcome::Unknown(format!("cannot read {name} in {link_ns}: {e}")))?
        .ok_or_else(|| {
            Outcome::NotUp(format!(
                "the journal says it is up, but there is no link {name} in {link_ns} (deleted by hand?)"
            ))
        })?;
    let reload = cfg
        .as_ref()
        .map(|c| drift::Reload::of(c, &recorded, &live, &mut kernel));
    let cfg_reload = cfg.as_ref().zip(reload.as_ref());
    let d = drift::all(&journal, &recorded, &live, cfg_reload, &mut kernel)
        .map_err(Outcome::Unknown)?;
    Ok(status::Status::of(&journal, &recorded, &live, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    #[test]
    fn a_replaced_state_file_or_a_lock_taken_meanwhile_disturbs_a_reading() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (jpath, apath) = (journal::path_for(d, "wg0"), applied::path_for(d, "wg0"));
        std::fs::write(&jpath, "journal").unwrap();
        std::fs::write(&apath, "record").unwrap();
        let handle = state::StateDir::open(d, state::Access::Change)
            .unwrap()
            .unwrap();
        let pinned = Pinned::of(&handle, "wg0", [&jpath, &apath]);
        assert_eq!(pinned.files.len(), 2);
        assert!(!pinned.disturbed(), "nothing happened");
        // A writer renames a new record over the old one.
        handle
            .write_atomic("wg0.applied.json", b"record 2")
            .unwrap();
        assert!(pinned.disturbed(), "the record was replaced");
        // Another process takes the lock (made after the pin: an operation's journal write
        // would tell; made before it: the lock itself).
        let pinned = Pinned::of(&handle, "wg0", [&jpath, &apath]);
        let lock = d.join("wg0.lock");
        std::fs::write(&lock, "").unwrap();
        let pinned_lock = Pinned::of(&handle, "wg0", [&jpath, &apath]);
        let mut holder = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec 9>>{0}; flock -x 9; echo $$ > {0}; echo held; exec sleep 60",
                lock.display()
            ))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let (before, after) = (pinned.disturbed(), pinned_lock.disturbed());
        holder.kill().unwrap();
        holder.wait().unwrap();
        assert_eq!(line.trim(), "held");
        assert!(
            !before,
            "no lock file when it was pinned, and no file replaced"
        );
        assert!(after, "the lock it pinned is held by another process");
    }
}
