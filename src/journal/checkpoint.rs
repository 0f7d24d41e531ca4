//! The per-step checkpoint: the executor's watch that keeps the journal of an up. The intent of
//! a step that leaves something beyond the link (the link, its move, a key file) reaches the
//! disk before the step runs; everything else rides along with the next write.

use super::{JournalFile, Record, Status, What};
use crate::executor::Watch;
use wg_exec_steps::policy::PolicyObject;
use wg_exec_steps::{Kernel, KernelError, Step, StepError, Trace};

/// The journal's record of a step's trace: the trace itself, with what only the journal learns
/// around the step.
fn what_of(trace: Trace, kernel: &mut dyn Kernel) -> What {
    match trace {
        Trace::None => What::Nothing,
        Trace::Link { name, ns } => What::Link {
            name,
            netns: ns,
            userspace_pids: Vec::new(),
        },
        Trace::Move { name, from, to } => What::Move { name, from, to },
        Trace::KeyFile { path } => What::KeyFile {
            existed: kernel.file_exists(&path).unwrap_or(true),
            path,
        },
        Trace::Addresses { ns, addrs } => What::Addresses { netns: ns, addrs },
        Trace::Routes { ns, table, count } => What::Routes {
            netns: ns,
            table,
            count,
        },
        Trace::Policy { ns, objects } => What::Policy { netns: ns, objects },
        // The value before the step, read now: if the step's write happens and wg-exec dies
        // before the next journal write, down still knows what to put back. An unreadable
        // value is recorded as "1", which down leaves alone.
        Trace::Sysctl { ns, path } => What::Policy {
            objects: vec![PolicyObject::Sysctl {
                old: kernel.sysctl_get(&ns, &path).unwrap_or_else(|_| "1".into()),
                path,
            }],
            netns: ns,
        },
        // The backend the step will choose (it asks the same question when it runs).
        Trace::Dns { name, ns } => What::Dns {
            name,
            netns: ns,
            backend: kernel.dns_available(),
        },
    }
}

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
        if !matters {
            return Ok(());
        }
        self.save().map_err(|e| {
            StepError::new(
                format!("record the intent in journal {}", self.path.display()),
                KernelError::from_io(&e),
            )
        })
    }

    /// Records what the step did. It reaches the disk with the next write (the next intent,
    /// or the final state): recovery needs only the intent, which already says what may exist.
    fn after(&mut self, i: usize, step: &dyn Step, kernel: &mut dyn Kernel) {
        if let Some(r) = self.journal.records.get_mut(i) {
            r.status = Status::Done;
            // What a full tunnel's step made, now that it is known (the intent may have named
            // more, such as an unreachable route a kernel without IPv6 has no use for). Not a
            // sysctl's: its record keeps the value from before.
            let trace = step.trace();
            if matches!(r.what, What::Policy { .. }) && !matches!(trace, Trace::Sysctl { .. }) {
                r.what = what_of(trace, kernel);
            }
            if let What::Link {
                name,
                userspace_pids,
                ..
            } = &mut r.what
            {
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

/// A reload's checkpoint: the journal says which step runs. What a killed reload leaves is
/// found by the next reload, which reads the live interface and converges; the link and what
/// goes with it stay recorded for `down` throughout.
pub struct ReloadCheckpoint<'a> {
    pub file: &'a mut JournalFile,
}

impl Watch for ReloadCheckpoint<'_> {
    fn before(&mut self, _i: usize, step: &dyn Step, _k: &mut dyn Kernel) -> Result<(), StepError> {
        self.file.journal.reload_step = Some(format!("{}: {}", step.name(), step.describe()));
        self.file.save().map_err(|e| {
            StepError::new(
                format!(
                    "record the reload step in journal {}",
                    self.file.path.display()
                ),
                KernelError::from_io(&e),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Journal, State, VERSION};
    use wg_exec_steps::fake::FakeKernel;
    use wg_exec_steps::LinkAdd;
    use wg_exec_steps::{Backend, Netns};

    fn file(dir: &std::path::Path) -> JournalFile {
        JournalFile {
            path: dir.join("wg0.ron"),
            journal: Journal {
                version: VERSION,
                interface: "wg0".into(),
                state: State::Starting,
                pid: 0,
                config: "/c.ron".into(),
                pre_shutdown: Vec::new(),
                post_shutdown: Vec::new(),
                records: Vec::new(),
                reload_step: None,
                boot_id: String::new(),
            },
        }
    }

    #[test]
    fn the_intent_of_a_link_is_on_disk_before_the_step_and_done_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = file(dir.path());
        let mut k = FakeKernel::new();
        let step = LinkAdd {
            name: "wg0".into(),
            ns: Netns::Named("a".into()),
            backend: Backend::Kernel,
            listen_port: None,
        };
        j.before(0, &step, &mut k).unwrap();
        let on_disk = crate::journal::load(&j.path).unwrap().unwrap();
        assert_eq!(on_disk.records[0].status, Status::Intent);
        assert_eq!(
            on_disk.records[0].what,
            What::Link {
                name: "wg0".into(),
                netns: Netns::Named("a".into()),
                userspace_pids: Vec::new()
            }
        );
        j.after(0, &step, &mut k);
        assert_eq!(j.journal.records[0].status, Status::Done);
        j.undone(0, &step);
        let on_disk = crate::journal::load(&j.path).unwrap().unwrap();
        assert_eq!(on_disk.records[0].status, Status::Undone);
    }

    #[test]
    fn steps_that_leave_nothing_beyond_the_link_do_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = file(dir.path());
        let mut k = FakeKernel::new();
        let step = wg_exec_steps::LinkUp {
            name: "wg0".into(),
            ns: Netns::Current,
        };
        j.before(0, &step, &mut k).unwrap();
        assert!(!j.path.exists());
        assert_eq!(j.journal.records[0].what, What::Nothing);
    }

    #[test]
    fn an_existing_key_file_is_recorded_as_existing() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = file(dir.path());
        let mut k = FakeKernel::new();
        k.put_key_file("/k/wg0.key", 1);
        let step = wg_exec_steps::GenerateKeyFile::new("/k/wg0.key".into());
        j.before(0, &step, &mut k).unwrap();
        assert_eq!(
            j.journal.records[0].what,
            What::KeyFile {
                path: "/k/wg0.key".into(),
                existed: true
            }
        );
    }
}
