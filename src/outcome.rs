//! Every result a command can have, with its exit code and its message, in one place; the help
//! text's table of exit codes sits beside it.

/// The table `--help` prints; the README has the same.
pub const EXIT_CODES: &str = include_str!("exit-codes.txt");

/// A command's script: `?` ends it early with the outcome at hand (a refusal, an invalid
/// configuration, …); [`end`] turns it into the command's outcome.
pub type Script = Result<Outcome, Outcome>;

/// The outcome of a script, however it ended.
pub fn end(script: Script) -> Outcome {
    script.unwrap_or_else(|o| o)
}

/// A note on stderr while a command goes on.
pub fn say(op: &str, iface: &str, msg: impl std::fmt::Display) {
    crate::journald::line(
        crate::journald::Priority::Notice,
        &format!("wg-exec: {op} {iface}: {msg}"),
    );
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Refused before changing anything: already up, not ours, the lock busy, the kernel not
    /// reachable.
    Refused(String),
    /// Bad configuration; each problem names file, line:column and field.
    Invalid(Vec<String>),
    /// Missing capabilities; nothing was touched.
    Unusable(String),
    /// A step failed and everything already done was undone; the message says what.
    RolledBack(String),
    /// `down` went through, the link is gone, but a hook failed.
    HookFailed(Vec<String>),
    /// Something could not be undone or removed; each line says what is left.
    LeftBehind(Vec<String>),
    /// `status`: the interface differs from its record or configuration; a line per difference.
    Drifted(Vec<String>),
    /// `status`: the interface is not up.
    NotUp(String),
    /// `status`: it cannot tell (an unusable journal or record, a device it cannot read), so
    /// that monitoring never takes this for "drifted" or "in sync".
    Unknown(String),
}

impl Outcome {
    pub fn code(&self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::Refused(_)
            | Outcome::RolledBack(_)
            | Outcome::HookFailed(_)
            | Outcome::Drifted(_) => 1,
            Outcome::Invalid(_) | Outcome::Unusable(_) => 2,
            Outcome::LeftBehind(_) | Outcome::NotUp(_) => 3,
            Outcome::Unknown(_) => 4,
        }
    }

    /// How the journal should file its lines.
    pub fn priority(&self) -> crate::journald::Priority {
        use crate::journald::Priority;
        match self {
            Outcome::Done | Outcome::Drifted(_) => Priority::Info,
            Outcome::NotUp(_) => Priority::Warning,
            _ => Priority::Error,
        }
    }

    /// The lines to print on stderr for `op` (up, down…) of `iface`.
    pub fn lines(&self, op: &str, iface: &str) -> Vec<String> {
        let at = |m: &str| format!("wg-exec: {op} {iface}: {m}");
        match self {
            Outcome::Done => Vec::new(),
            Outcome::Refused(m) | Outcome::Unusable(m) => {
                vec![at(&format!("{m}; nothing was changed"))]
            }
            Outcome::Invalid(errors) => errors
                .iter()
                .map(|e| format!("wg-exec: error: {e}"))
                .collect(),
            Outcome::RolledBack(m) => vec![at(m)],
            Outcome::HookFailed(lines) | Outcome::LeftBehind(lines) => {
                lines.iter().map(|l| at(l)).collect()
            }
            // Status prints its report on stdout itself.
            Outcome::Drifted(_) => Vec::new(),
            Outcome::NotUp(m) | Outcome::Unknown(m) => vec![at(m)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_help_table() {
        for (outcome, code) in [
            (Outcome::Done, 0),
            (Outcome::Refused("busy".into()), 1),
            (Outcome::RolledBack("x".into()), 1),
            (Outcome::HookFailed(vec![]), 1),
            (Outcome::Invalid(vec![]), 2),
            (Outcome::Unusable("caps".into()), 2),
            (Outcome::LeftBehind(vec![]), 3),
            (Outcome::Unknown("unreadable".into()), 4),
        ] {
            assert_eq!(outcome.code(), code, "{outcome:?}");
            assert!(EXIT_CODES.contains(&format!("  {code}  ")));
        }
    }

    #[test]
    fn refusals_say_that_nothing_was_changed_once() {
        assert_eq!(
            Outcome::Refused("it is already up".into()).lines("up", "wg0"),
            ["wg-exec: up wg0: it is already up; nothing was changed"]
        );
        assert_eq!(
            Outcome::Invalid(vec!["f.ron:1:2: mtu: bad".into()]).lines("up", "wg0"),
            ["wg-exec: error: f.ron:1:2: mtu: bad"]
        );
    }
}
