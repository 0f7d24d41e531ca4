//! The journal: what an `up` is about to do and what it did, in /run/wg-exec/IFACE.ron, written
//! atomically before and after each step. It lets `down` undo exactly what `up` created even
//! when the configuration changed, and lets the next run finish an `up` that was killed.

use crate::executor::{Failure, Watch};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use wg_exec_steps::gen_key::GenerateKeyFile;
use wg_exec_steps::teardown::Teardown;
use wg_exec_steps::{Kernel, Netns, Step, StepError, Trace};

/// Where journals and locks live: $WG_EXEC_STATE_DIR, else /run/wg-exec.
pub fn state_dir() -> PathBuf {
    std::env::var_os("WG_EXEC_STATE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/wg-exec"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// An up is running (or was killed while running).
    Up,
    /// The interface is up.
    Complete,
    /// An up failed and its rollback left something behind.
    Incomplete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// About to be applied: it may or may not have happened.
    Intent,
    Done,
    Undone,
}

/// A network namespace as the journal writes it: none = the one wg-exec runs in.
type NsName = Option<String>;

fn ns_name(ns: &Netns) -> NsName {
    match ns {
        Netns::Current => None,
        Netns::Init => Some("init".into()),
        Netns::Named(n) => Some(n.clone()),
    }
}

fn ns_of(name: &NsName) -> Netns {
    Netns::from_option(name.as_deref())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum What {
    Link {
        name: String,
        netns: NsName,
        ifindex: Option<u32>,
        userspace_pids: Vec<i32>,
    },
    Move {
        name: String,
        from: NsName,
        to: NsName,
    },
    KeyFile {
        path: PathBuf,
        /// It was there before: never removed.
        existed: bool,
    },
    Addresses {
        netns: NsName,
        addrs: Vec<String>,
    },
    /// How many routes through the link, in which table (they go with the link).
    Routes {
        netns: NsName,
        table: u32,
        count: usize,
    },
    /// Hooks, keys, peers, up: nothing that outlives the link.
    Nothing,
}

impl What {
    /// Whether undoing it takes more than deleting the link: the link itself, its move, a key
    /// file. Only these are written to disk before and after their step.
    fn outlives_the_link(&self) -> bool {
        matches!(
            self,
            What::Link { .. } | What::Move { .. } | What::KeyFile { .. }
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
    pub interface: String,
    pub state: State,
    /// The wg-exec that wrote it last.
    pub pid: u32,
    pub config: PathBuf,
    /// The shutdown hooks as they were at up: down runs these, as systemd runs the ExecStop of
    /// the unit that was started, whatever the configuration says by then.
    #[serde(default)]
    pub pre_shutdown: Vec<String>,
    #[serde(default)]
    pub post_shutdown: Vec<String>,
    pub records: Vec<Record>,
}

impl Journal {
    /// Records of steps that were not undone.
    fn live(&self) -> impl DoubleEndedIterator<Item = &Record> {
        self.records.iter().filter(|r| r.status != Status::Undone)
    }

    /// Where the link was moved from and to, if it may have been.
    fn moved(&self) -> Option<(Netns, Netns)> {
        self.live().find_map(|r| match &r.what {
            What::Move { from, to, .. } => Some((ns_of(from), ns_of(to))),
            _ => None,
        })
    }
}

/// A journal and the file it lives in.
pub struct JournalFile {
    pub path: PathBuf,
    pub journal: Journal,
}

pub fn path_for(dir: &Path, iface: &str) -> PathBuf {
    dir.join(format!("{iface}.ron"))
}

/// Reads a journal; None when there is none.
pub fn load(path: &Path) -> Result<Option<Journal>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => ron::from_str(&text)
            .map(Some)
            .map_err(|e| format!("journal {} is unreadable: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read journal {}: {e}", path.display())),
    }
}

impl JournalFile {
    /// A journal for an up of `cfg`.
    pub fn new(path: PathBuf, cfg: &crate::config::Config, state: State) -> JournalFile {
        JournalFile {
            path,
            journal: Journal {
                interface: cfg.name.clone(),
                state,
                pid: std::process::id(),
                config: cfg.path.clone(),
                pre_shutdown: cfg.pre_shutdown.clone(),
                post_shutdown: cfg.post_shutdown.clone(),
                records: Vec::new(),
            },
        }
    }

    /// Writes it atomically: a temporary file, fsync, rename. (The directory is not fsynced:
    /// the journal lives in /run, which a power loss empties together with the links it
    /// describes; what it guards against is a killed process, and for that the rename is
    /// enough.)
    pub fn save(&mut self) -> std::io::Result<()> {
        self.journal.pid = std::process::id();
        let text = ron::ser::to_string_pretty(&self.journal, ron::ser::PrettyConfig::default())
            .map_err(std::io::Error::other)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            self.path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or("journal"),
            std::process::id()
        ));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &self.path)
    }

    pub fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn set_state(&mut self, state: State) -> std::io::Result<()> {
        self.journal.state = state;
        self.save()
    }
}

fn what_of(trace: Trace, kernel: &mut dyn Kernel) -> What {
    match trace {
        Trace::None => What::Nothing,
        Trace::Link { name, ns } => What::Link {
            name,
            netns: ns_name(&ns),
            ifindex: None,
            userspace_pids: Vec::new(),
        },
        Trace::Move { name, from, to } => What::Move {
            name,
            from: ns_name(&from),
            to: ns_name(&to),
        },
        Trace::KeyFile { path } => What::KeyFile {
            existed: kernel.file_exists(&path).unwrap_or(true),
            path,
        },
        Trace::Addresses { ns, addrs } => What::Addresses {
            netns: ns_name(&ns),
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
        },
        Trace::Routes { ns, table, count } => What::Routes {
            netns: ns_name(&ns),
            table,
            count,
        },
    }
}

/// The executor's watch that keeps the journal.
impl Watch for JournalFile {
    fn before(
        &mut self,
        i: usize,
        step: &dyn Step,
        kernel: &mut dyn Kernel,
    ) -> Result<(), StepError> {
        let record = Record {
            step: step.name().to_string(),
            status: Status::Intent,
            what: what_of(step.trace(), kernel),
        };
        let matters = record.what.outlives_the_link();
        self.journal.records.truncate(i);
        self.journal.records.push(record);
        // A step that leaves nothing of its own beyond the link (hooks, key, up, peers,
        // addresses, routes) changes nothing a recovery would undo: its record rides along with
        // the next write.
        if !matters {
            return Ok(());
        }
        self.save().map_err(|e| {
            StepError::new(
                format!("record the intent in journal {}", self.path.display()),
                wg_exec_steps::KernelError::from_io(&e),
            )
        })
    }

    /// Records what the step did. It reaches the disk with the next write (the next intent,
    /// or the final state): recovery needs only the intent, which already says what may exist.
    fn after(&mut self, i: usize, _step: &dyn Step, kernel: &mut dyn Kernel) {
        if let Some(r) = self.journal.records.get_mut(i) {
            r.status = Status::Done;
            if let What::Link {
                name,
                netns,
                ifindex,
                userspace_pids,
            } = &mut r.what
            {
                *ifindex = kernel.link_index(&ns_of(netns), name).ok();
                *userspace_pids = kernel.userspace_pids(name);
            }
        }
    }

    fn undone(&mut self, i: usize, _step: &dyn Step) {
        if let Some(r) = self.journal.records.get_mut(i) {
            r.status = Status::Undone;
        }
        if let Err(e) = self.save() {
            log::error!("cannot update journal {}: {e}", self.path.display());
        }
    }
}

/// Undoes what a journal says was (or may have been) done: deletes the link where it is, and,
/// for an up that never completed, the key files it created. Goes on past failures.
pub fn undo(journal: &Journal, kernel: &mut dyn Kernel) -> (Vec<String>, Vec<Failure>) {
    let moved = journal.moved();
    let mut done = Vec::new();
    let mut failures = Vec::new();
    for r in journal.live().rev() {
        match &r.what {
            What::Link { name, netns, .. } => {
                let mut step = match &moved {
                    Some((from, to)) => Teardown {
                        name: name.clone(),
                        ns: to.clone(),
                        created_in: Some(from.clone()),
                    },
                    None => Teardown {
                        name: name.clone(),
                        ns: ns_of(netns),
                        created_in: None,
                    },
                };
                match step.apply(kernel) {
                    Ok(()) => done.push(format!("link {}", step.describe())),
                    Err(error) => failures.push(Failure {
                        step: "teardown",
                        object: step.describe(),
                        error,
                    }),
                }
            }
            What::KeyFile {
                path,
                existed: false,
            } if journal.state != State::Complete && kernel.file_exists(path).unwrap_or(false) => {
                let mut step = GenerateKeyFile::created(path.clone());
                match step.rollback(kernel) {
                    Ok(()) => done.push(format!("key file {}", path.display())),
                    Err(error) => failures.push(Failure {
                        step: "generate key file",
                        object: path.display().to_string(),
                        error,
                    }),
                }
            }
            _ => {}
        }
    }
    (done, failures)
}

/// Names of the links a journal created, for messages.
pub fn links(journal: &Journal) -> Vec<String> {
    journal
        .records
        .iter()
        .filter_map(|r| match &r.what {
            What::Link { name, netns, .. } => {
                Some(wg_exec_steps::step::object(name, &ns_of(netns)))
            }
            _ => None,
        })
        .collect()
}

/// Down (or recovery) driven by the journal: one step, so that it is reported, signalled and
/// fault-injected like the configuration's teardown.
pub struct JournalUndo {
    pub journal: Journal,
}

impl Step for JournalUndo {
    fn name(&self) -> &'static str {
        "teardown"
    }

    fn describe(&self) -> String {
        let links = links(&self.journal);
        match links.is_empty() {
            true => format!("{} (from the journal: no link)", self.journal.interface),
            false => format!("{} (from the journal)", links.join(", ")),
        }
    }

    fn print(&self) -> Vec<String> {
        Vec::new()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let (done, mut failures) = undo(&self.journal, kernel);
        if !done.is_empty() {
            log::info!("removed {}", done.join(", "));
        }
        match failures.len() {
            0 => Ok(()),
            _ => {
                let first = failures.remove(0).error;
                Err(first.with_undo(failures.into_iter().map(|f| f.error).collect()))
            }
        }
    }

    fn rollback(&mut self, _kernel: &mut dyn Kernel) -> Result<(), StepError> {
        Ok(())
    }
}

/// Whether the link a journal created still exists where the journal last put it.
pub fn link_present(journal: &Journal, kernel: &mut dyn Kernel) -> bool {
    let moved_to = journal.moved().map(|(_, to)| to);
    journal.live().any(|r| match &r.what {
        What::Link { name, netns, .. } => {
            let ns = moved_to.clone().unwrap_or_else(|| ns_of(netns));
            kernel.link_exists(&ns, name).unwrap_or(true)
        }
        _ => false,
    })
}
