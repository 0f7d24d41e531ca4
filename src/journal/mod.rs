//! The journal: what an `up` is about to do and what it did, in STATE_DIR/IFACE.ron, written
//! atomically before the steps that leave something behind. It lets `down` undo exactly what
//! `up` created even when the configuration changed, and lets the next run finish an `up` that
//! was killed. This file is the format; [`checkpoint`] keeps it step by step during an up, and
//! the plan wing (src/plan/down.rs) turns it back into steps.

pub mod applied;
pub mod checkpoint;
pub mod lifecycle;
pub mod recovery;
pub mod transaction;
pub mod vet;

pub use lifecycle::State;

use crate::state::{Access, StateDir, StateError};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use wg_exec_steps::PolicyObject;
use wg_exec_steps::{DnsBackend, Netns};

/// The format version this wg-exec writes and reads. A journal of another version is unusable:
/// `down` sets it aside and follows the configuration.
pub const VERSION: u32 = 2;

/// Where journals, records and locks live: $WG_EXEC_STATE_DIR, else /var/lib/wg-exec (the
/// units' StateDirectory=, which no stop, failure or kill of a unit removes; a journal from an
/// earlier boot is known by its boot id and dropped, its links having gone with that boot).
pub fn state_dir() -> PathBuf {
    std::env::var_os("WG_EXEC_STATE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/wg-exec"))
}

/// This boot's id (the kernel's random boot_id), empty where it cannot be read.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// About to be applied: it may or may not have happened.
    Intent,
    Done,
    Undone,
}

/// What one step left on the machine, as the journal keeps it: the step's own [`Trace`] in the
/// steps crate's vocabulary ([`Netns`], [`IpNet`], [`PolicyObject`], [`DnsBackend`]), plus what
/// only the journal learns around the step (the userspace processes serving a link, whether a
/// key file was there before, the DNS backend chosen, a sysctl's value before). The variants and
/// fields keep the names journals have always had, so a journal written before stays readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum What {
    Link {
        name: String,
        netns: Netns,
        /// The userspace processes serving it, so that down stops exactly those.
        userspace_pids: Vec<i32>,
    },
    Move {
        name: String,
        from: Netns,
        to: Netns,
    },
    KeyFile {
        path: PathBuf,
        /// It was there before: never removed.
        existed: bool,
    },
    Addresses {
        netns: Netns,
        addrs: Vec<IpNet>,
    },
    /// How many routes through the link, in which table (they go with the link).
    Routes {
        netns: Netns,
        table: u32,
        count: usize,
    },
    /// A full tunnel's rules, unreachable route, firewall tables and sysctl (with its value
    /// before): they outlive the link, and down removes exactly these (a rule by all its
    /// fields, priority included).
    Policy {
        netns: Netns,
        objects: Vec<PolicyObject>,
    },
    /// DNS settings of the link: a resolvconf entry outlives it.
    Dns {
        name: String,
        netns: Netns,
        /// The backend chosen when the step was about to run; None when neither was available.
        /// Written by its name ("systemd-resolved", "resolvconf", "" for none).
        #[serde(with = "backend_name")]
        backend: Option<DnsBackend>,
    },
    /// Hooks, keys, peers, up: nothing that outlives the link.
    Nothing,
}

/// A DNS backend by the name journals have always written ("" for none): a name the steps
/// crate does not know is not a journal wg-exec wrote.
mod backend_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use wg_exec_steps::DnsBackend;

    pub fn serialize<S: Serializer>(b: &Option<DnsBackend>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(b.map_or("", |b| b.name()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DnsBackend>, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "" => Ok(None),
            other => DnsBackend::from_name(other)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("{other:?} is no DNS backend"))),
        }
    }
}

impl What {
    /// Whether undoing it takes more than deleting the link: the link itself, its move, a key
    /// file. Only these are written to disk before their step.
    pub fn outlives_the_link(&self) -> bool {
        matches!(
            self,
            What::Link { .. }
                | What::Move { .. }
                | What::KeyFile { .. }
                | What::Policy { .. }
                | What::Dns { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub step: String,
    pub status: Status,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// [`VERSION`]; a journal without it is of an older format.
    pub version: u32,
    pub interface: String,
    pub state: State,
    /// The wg-exec that wrote it last.
    pub pid: u32,
    pub config: PathBuf,
    /// The shutdown hooks as they were at up: down runs these, as systemd runs the ExecStop of
    /// the unit that was started, whatever the configuration says by then.
    pub pre_shutdown: Vec<String>,
    pub post_shutdown: Vec<String>,
    pub records: Vec<Record>,
    /// The step a running reload is at (for a person reading the journal).
    #[serde(default)]
    pub reload_step: Option<String>,
    /// The boot it was written in: links do not outlive a boot.
    #[serde(default)]
    pub boot_id: String,
}

impl Journal {
    /// An empty journal for an up of `cfg`.
    pub fn for_up(cfg: &crate::config::Config) -> Journal {
        Journal {
            version: VERSION,
            interface: cfg.name.clone(),
            state: State::Starting,
            pid: std::process::id(),
            // Absolute: reload and status find it from any working directory.
            config: std::path::absolute(&cfg.path).unwrap_or_else(|_| cfg.path.clone()),
            pre_shutdown: cfg.pre_shutdown.clone(),
            post_shutdown: cfg.post_shutdown.clone(),
            records: Vec::new(),
            reload_step: None,
            boot_id: boot_id(),
        }
    }

    /// Whether it was written in an earlier boot (its links, addresses and routes are gone).
    pub fn from_an_earlier_boot(&self) -> bool {
        let now = boot_id();
        !self.boot_id.is_empty() && !now.is_empty() && self.boot_id != now
    }

    /// Whether the interface is (or was last known to be) up: complete, or being reloaded.
    pub fn is_up(&self) -> bool {
        self.state.is_up()
    }

    /// Records of steps that were not undone.
    pub fn live(&self) -> impl DoubleEndedIterator<Item = &Record> {
        self.records.iter().filter(|r| r.status != Status::Undone)
    }

    /// Where the link was moved from and to, if it may have been.
    pub fn moved(&self) -> Option<(Netns, Netns)> {
        self.live().find_map(|r| match &r.what {
            What::Move { from, to, .. } => Some((from.clone(), to.clone())),
            _ => None,
        })
    }

    /// A full tunnel's objects that may exist, in the order they were made, by namespace.
    pub fn policy(&self) -> Vec<(Netns, Vec<PolicyObject>)> {
        self.live()
            .filter_map(|r| match &r.what {
                What::Policy { netns, objects } => Some((netns.clone(), objects.clone())),
                _ => None,
            })
            .collect()
    }

    /// The links whose DNS settings it set (or was about to): name, namespace, backend.
    pub fn dns(&self) -> Vec<(String, Netns, Option<DnsBackend>)> {
        self.live()
            .filter_map(|r| match &r.what {
                What::Dns {
                    name,
                    netns,
                    backend,
                } => Some((name.clone(), netns.clone(), *backend)),
                _ => None,
            })
            .collect()
    }

    /// The table of the full tunnel, when it has one.
    pub fn full_tunnel_table(&self) -> Option<u32> {
        self.policy()
            .iter()
            .flat_map(|(_, o)| o.iter())
            .find_map(|o| match o {
                PolicyObject::Rule(r) if r.fwmark.is_some() => Some(r.table),
                _ => None,
            })
    }

    /// The links it created: name, where it was created, where it should be now.
    pub fn links(&self) -> Vec<(String, Netns, Netns)> {
        let moved = self.moved();
        self.live()
            .filter_map(|r| match &r.what {
                What::Link { name, netns, .. } => {
                    let created = netns.clone();
                    let now = match &moved {
                        Some((_, to)) => to.clone(),
                        None => created.clone(),
                    };
                    Some((name.clone(), created, now))
                }
                _ => None,
            })
            .collect()
    }
}

/// The configuration file the interface's up used, when its journal names one that exists:
/// reload and status default to it (an up with --config FILE is reloaded from FILE).
pub fn recorded_config(iface: &str) -> Option<PathBuf> {
    let j = peek(&path_for(&state_dir(), iface)).ok()??;
    j.config.is_file().then_some(j.config)
}

/// Why a journal cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub path: PathBuf,
    pub reason: String,
    /// Not one wg-exec wrote, or in a file or directory it does not trust: nothing in it is
    /// acted on, and it is not set aside either (a person looks at it first).
    pub refused: bool,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.refused {
            false => write!(
                f,
                "the journal {} is unusable ({})",
                self.path.display(),
                self.reason
            ),
            true => write!(
                f,
                "the journal {} is refused ({}); nothing in it was acted on: check it, remove it, and run the command again (down then follows the configuration)",
                self.path.display(),
                self.reason
            ),
        }
    }
}

pub fn path_for(dir: &Path, iface: &str) -> PathBuf {
    dir.join(format!("{iface}.ron"))
}

/// Reads a journal; None when there is none, or when it is from an earlier boot (then it is
/// removed, with the records beside it, and said). Truncated, edited or of another version:
/// unusable. In a directory or file wg-exec does not trust, or with records wg-exec could not
/// have written for this interface ([`vet::vet`]): refused.
pub fn load(path: &Path) -> Result<Option<Journal>, Unusable> {
    let j = load_any(path, Access::Change)?;
    match j {
        Some(j) if j.from_an_earlier_boot() => {
            log::warn!(
                "the journal {} is from an earlier boot: what it records went with that boot; removing it",
                path.display()
            );
            if let Ok(Some((dir, file))) = StateDir::of_file(path, Access::Change) {
                let _ = dir.remove(&file);
                if let Some(name) = file.strip_suffix(".ron") {
                    let records = [
                        applied::path_for(dir.path(), name),
                        applied::next_path_for(dir.path(), name),
                    ];
                    let legacy = records.iter().filter_map(|p| applied::legacy_path(p));
                    for p in records.clone().into_iter().chain(legacy) {
                        if let Some(f) = p.file_name().and_then(|f| f.to_str()) {
                            let _ = dir.remove(f);
                        }
                    }
                }
            }
            Ok(None)
        }
        other => Ok(other),
    }
}

/// [`load`] for commands that hold no lock (refresh, finding the recorded configuration): a
/// journal from an earlier boot is None too, but is left for a command under the lock to
/// remove. Removing it here could remove the journal an `up` has just written in its place.
pub fn peek(path: &Path) -> Result<Option<Journal>, Unusable> {
    Ok(load_any(path, Access::Change)?.filter(|j| !j.from_an_earlier_boot()))
}

/// [`peek`] for commands that only show it (status, `down --print`): a directory or file that
/// wg-exec does not trust is read with a warning (its records are still checked).
pub fn peek_read_only(path: &Path) -> Result<Option<Journal>, Unusable> {
    Ok(load_any(path, Access::Read)?.filter(|j| !j.from_an_earlier_boot()))
}

/// [`load`] without the boot check.
fn load_any(path: &Path, access: Access) -> Result<Option<Journal>, Unusable> {
    let unusable = |reason: String, refused: bool| Unusable {
        path: path.to_path_buf(),
        reason,
        refused,
    };
    let mut trusted = false;
    let read = StateDir::of_file(path, access).and_then(|d| match d {
        Some((dir, name)) => {
            trusted = dir.untrusted.is_none();
            dir.read(&name)
        }
        None => Ok(None),
    });
    let bytes = match read {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(StateError::Untrusted(m)) => return Err(unusable(m, true)),
        Err(StateError::Io(m)) => return Err(unusable(m, false)),
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| unusable(format!("not a journal: not UTF-8 text ({e})"), false))?;
    let journal = parse(text).map_err(|m| unusable(m, false))?;
    let iface = path
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.strip_suffix(".ron"))
        .unwrap_or_default();
    vet::vet(&journal, iface).map_err(|m| unusable(m, true))?;
    // The configuration is followed (reload, status) only from a directory wg-exec trusts;
    // read from another user's (root's status of a unit's), it is not, and need not be root's.
    if trusted {
        let dir = path.parent().unwrap_or(Path::new("."));
        vet::config(&journal.config, dir).map_err(|m| unusable(m, true))?;
    }
    Ok(Some(journal))
}

/// The text of a journal; the version is checked before the rest, so that another version is
/// named as such rather than as a missing field.
pub fn parse(text: &str) -> Result<Journal, String> {
    #[derive(Deserialize)]
    #[serde(rename = "Journal")]
    struct Head {
        /// 0: absent (no version was ever 0).
        #[serde(default)]
        version: u32,
    }
    match ron::from_str::<Head>(text) {
        Err(e) => return Err(format!("not a journal: {e}")),
        Ok(Head { version: VERSION }) => {}
        Ok(Head { version: 0 }) => {
            return Err(format!(
            "no format version (written by an older wg-exec); this wg-exec reads version {VERSION}"
        ))
        }
        Ok(Head { version: v }) => {
            return Err(format!(
                "format version {v}; this wg-exec reads version {VERSION}"
            ))
        }
    }
    ron_options()
        .from_str(text)
        .map_err(|e| format!("not a journal of version {VERSION}: {e}"))
}

/// How journals are written and read: RON, with a full tunnel's rule and firewall table written
/// inside their object (`Rule(v6: false, …)`, as journals have always had them) rather than
/// wrapped once more (`Rule((v6: false, …))`).
fn ron_options() -> ron::Options {
    ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
}

/// The text of a journal, as [`JournalFile::save`] writes it and [`parse`] reads it.
pub fn to_text(journal: &Journal) -> Result<String, ron::Error> {
    ron_options().to_string_pretty(journal, ron::ser::PrettyConfig::default())
}

/// Renames an unusable journal to IFACE.ron.unusable-UNIXTIME (never deleted: it is kept for
/// a person to read); returns the new path.
pub fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (dir, name) = open_for_change(path)?;
    let aside = format!("{name}.unusable-{secs}");
    dir.rename(&name, &aside)?;
    Ok(dir.path().join(aside))
}

/// The state directory of `path` (a journal's or a record's), for writing: it must exist and
/// be trusted.
pub(crate) fn open_for_change(path: &Path) -> std::io::Result<(StateDir, String)> {
    match StateDir::of_file(path, Access::Change) {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("there is no state directory for {}", path.display()),
        )),
        Err(e) => Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            e.to_string(),
        )),
    }
}

/// A journal and the file it lives in.
pub struct JournalFile {
    pub path: PathBuf,
    pub journal: Journal,
}

impl JournalFile {
    /// Writes it atomically: a temporary file, fsync, rename. (The directory is not fsynced:
    /// what the journal guards against is a killed process, and for that the rename is enough;
    /// after a power loss the links it describes are gone, and the boot id drops it.)
    pub fn save(&mut self) -> std::io::Result<()> {
        self.journal.pid = std::process::id();
        let text = to_text(&self.journal).map_err(std::io::Error::other)?;
        let (dir, name) = open_for_change(&self.path)?;
        dir.write_atomic(&name, text.as_bytes())
    }

    pub fn remove(&self) -> std::io::Result<()> {
        JournalFile::remove_path(&self.path)
    }

    /// Removes the journal at `path` through its state directory; a missing one is fine.
    pub fn remove_path(path: &Path) -> std::io::Result<()> {
        let (dir, name) = open_for_change(path)?;
        dir.remove(&name)
    }

    pub fn set_state(&mut self, state: State) -> std::io::Result<()> {
        self.journal.state = state;
        self.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Journal {
        Journal {
            version: VERSION,
            interface: "wg0".into(),
            state: State::Running,
            pid: 1,
            config: "/etc/wg-exec/wg0.ron".into(),
            pre_shutdown: vec!["echo bye".into()],
            post_shutdown: Vec::new(),
            reload_step: None,
            boot_id: boot_id(),
            records: vec![
                Record {
                    step: "link add".into(),
                    status: Status::Done,
                    what: What::Link {
                        name: "wg0".into(),
                        netns: Netns::Named("a".into()),
                        userspace_pids: vec![42],
                    },
                },
                Record {
                    step: "netns move".into(),
                    status: Status::Done,
                    what: What::Move {
                        name: "wg0".into(),
                        from: Netns::Named("a".into()),
                        to: Netns::Current,
                    },
                },
            ],
        }
    }

    #[test]
    fn a_written_journal_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = JournalFile {
            path: path_for(dir.path(), "wg0"),
            journal: sample(),
        };
        f.save().unwrap();
        let back = load(&f.path).unwrap().unwrap();
        assert_eq!(back.records, sample().records);
        assert_eq!(back.version, VERSION);
        assert_eq!(
            back.links(),
            vec![("wg0".into(), Netns::Named("a".into()), Netns::Current)]
        );
    }

    #[test]
    fn truncated_edited_and_other_versions_are_unusable_with_a_reason() {
        let text = to_text(&sample()).unwrap();
        let truncated = &text[..text.len() / 2];
        let err = parse(truncated).unwrap_err();
        assert!(err.starts_with("not a journal"), "{err}");
        let other = text.replace(&format!("version: {VERSION}"), "version: 99");
        assert_eq!(
            parse(&other).unwrap_err(),
            format!("format version 99; this wg-exec reads version {VERSION}")
        );
        let old = text.replace(&format!("version: {VERSION},"), "");
        assert!(parse(&old).unwrap_err().contains("no format version"));
        let edited = text.replace("Complete", "Finished");
        assert!(parse(&edited)
            .unwrap_err()
            .starts_with(&format!("not a journal of version {VERSION}")));
    }

    /// Nesting, however deep, is an error and not a stack overflow (ron's recursion limit),
    /// in an unknown field as in a known one, in the journal as in the record.
    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        for open in ["[", "(", "Some(", "{\"a\":"] {
            let deep = open.repeat(200_000);
            let text = format!("Journal(version: 2, interface: \"wg0\", extra: {deep}");
            assert!(parse(&text).is_err());
            let text = format!("Journal(version: 2, interface: \"wg0\", records: {deep}");
            assert!(parse(&text).is_err());
            let text = format!("(version: 1, addresses: {deep}");
            assert!(applied::legacy::parse(text.as_bytes()).is_err());
            let json = format!("{{\"version\": 2, \"addresses\": {}", "[".repeat(200_000));
            assert!(applied::parse(json.as_bytes()).is_err());
            crate::fuzzing::journal_and_record(json.as_bytes());
            crate::fuzzing::journal_and_record(text.as_bytes());
        }
    }

    #[test]
    fn a_journal_from_an_earlier_boot_is_dropped_with_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = JournalFile {
            path: path_for(dir.path(), "wg0"),
            journal: Journal {
                boot_id: "an-earlier-boot".into(),
                ..sample()
            },
        };
        f.save().unwrap();
        let record = applied::path_for(dir.path(), "wg0");
        std::fs::write(&record, "whatever").unwrap();
        // Commands without the lock see nothing, and remove nothing.
        assert_eq!(peek(&f.path).unwrap(), None);
        assert!(f.path.exists() && record.exists());
        assert_eq!(load(&f.path).unwrap(), None);
        assert!(!f.path.exists() && !record.exists());
        // This boot's journal is kept.
        f.journal.boot_id = boot_id();
        f.save().unwrap();
        assert!(peek(&f.path).unwrap().is_some());
        assert!(load(&f.path).unwrap().is_some());
    }

    #[test]
    fn no_journal_is_none_and_an_unusable_one_is_set_aside_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "wg0");
        assert_eq!(load(&path).unwrap(), None);
        std::fs::write(&path, "Journal(version: 2, interf").unwrap();
        let err = load(&path).unwrap_err();
        assert_eq!(err.path, path);
        let aside = set_aside(&path).unwrap();
        assert!(!path.exists());
        assert_eq!(
            std::fs::read_to_string(&aside).unwrap(),
            "Journal(version: 2, interf"
        );
        assert!(aside
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("wg0.ron.unusable-"));
    }
}
