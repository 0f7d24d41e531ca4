//! The lifecycle of an interface as its journal says it, and the gates on it. Every command asks
//! the state whether it may go on (as youki's `ContainerStatus::can_start()`/`can_kill()`) rather
//! than re-deriving the rules. The names in the journal file are those every wg-exec has
//! written ("Up" for an up in progress, "Complete" for up); the names here say what they mean.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// An up is running (or was killed while running).
    #[serde(rename = "Up")]
    Starting,
    /// The interface is up.
    #[serde(rename = "Complete")]
    Running,
    /// An up failed and its rollback left something behind.
    #[serde(rename = "Incomplete")]
    RollbackIncomplete,
    /// Up, and a reload is running (or was killed while running): the link is there; the next
    /// reload converges from what it finds.
    Reloading,
}

impl State {
    /// The interface is (or was last known to be) up: running, or being reloaded.
    pub fn is_up(self) -> bool {
        matches!(self, State::Running | State::Reloading)
    }

    /// A reload may run: the interface is up (a reload that was killed is finished by the next).
    pub fn can_reload(self) -> bool {
        self.is_up()
    }

    /// A reload was killed before it finished: the next one joins the record it was applying
    /// to the last one, and closes it.
    pub fn reload_interrupted(self) -> bool {
        self == State::Reloading
    }

    /// An up, or its rollback, did not finish: the next up rolls it back first.
    pub fn needs_recovery(self) -> bool {
        matches!(self, State::Starting | State::RollbackIncomplete)
    }

    /// The key files an up generated are removed by its undo: only when the up never completed
    /// (once up, the key is the interface's).
    pub fn undo_removes_generated_keys(self) -> bool {
        !self.is_up()
    }

    /// What did not finish, for the message of the next up: "up" or "rollback".
    pub fn unfinished(self) -> &'static str {
        match self {
            State::RollbackIncomplete => "rollback",
            _ => "up",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::State::{self, *};

    /// Each gate, for each state.
    #[test]
    fn the_gates() {
        // state, is_up, can_reload, reload_interrupted, needs_recovery, removes keys, unfinished
        let table = [
            (Starting, false, false, false, true, true, "up"),
            (Running, true, true, false, false, false, "up"),
            (
                RollbackIncomplete,
                false,
                false,
                false,
                true,
                true,
                "rollback",
            ),
            (Reloading, true, true, true, false, false, "up"),
        ];
        for (s, up, reload, interrupted, recovery, keys, unfinished) in table {
            assert_eq!(s.is_up(), up, "{s:?}");
            assert_eq!(s.can_reload(), reload, "{s:?}");
            assert_eq!(s.reload_interrupted(), interrupted, "{s:?}");
            assert_eq!(s.needs_recovery(), recovery, "{s:?}");
            assert_eq!(s.undo_removes_generated_keys(), keys, "{s:?}");
            assert_eq!(s.unfinished(), unfinished, "{s:?}");
        }
    }

    /// The file keeps the names every wg-exec wrote: one written before the rename loads with
    /// the same meaning, and one written now reads the same to an older wg-exec.
    #[test]
    fn the_journal_keeps_the_names_it_always_had() {
        for (written, state) in [
            ("Up", Starting),
            ("Complete", Running),
            ("Incomplete", RollbackIncomplete),
            ("Reloading", Reloading),
        ] {
            assert_eq!(ron::from_str::<State>(written).unwrap(), state);
            assert_eq!(ron::to_string(&state).unwrap(), written);
        }
        // A whole journal as the wg-exec before the rename wrote it (ron, pretty).
        for (written, state) in [("Up", Starting), ("Complete", Running)] {
            let text = format!(
                r#"(
    version: 2,
    interface: "wg0",
    state: {written},
    pid: 4242,
    config: "/etc/wg-exec/wg0.ron",
    pre_shutdown: [],
    post_shutdown: [],
    records: [
        (
            step: "link add",
            status: Done,
            what: Link(
                name: "wg0",
                netns: None,
                userspace_pids: [],
            ),
        ),
    ],
    reload_step: None,
    boot_id: "",
)"#
            );
            let j = crate::journal::parse(&text).unwrap();
            assert_eq!(j.state, state);
            assert_eq!(j.is_up(), state == Running);
        }
    }
}
