//! Lines on stderr as journald wants them: when stderr is the journal (systemd sets
//! JOURNAL_STREAM to its device and inode), each line starts with its syslog priority (`<3>`
//! error, `<4>` warning, `<5>` notice, `<6>` info, `<7>` debug), so that
//! `journalctl -p warning -u wg-exec@wg0` filters; on a terminal or a pipe, lines are as they are.

use std::os::fd::AsFd;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl From<log::Level> for Priority {
    fn from(l: log::Level) -> Priority {
        match l {
            log::Level::Error => Priority::Error,
            log::Level::Warn => Priority::Warning,
            log::Level::Info => Priority::Info,
            log::Level::Debug | log::Level::Trace => Priority::Debug,
        }
    }
}

/// Whether JOURNAL_STREAM ("DEV:INODE") names the file stderr is.
fn connected(stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(stream), Some((dev, ino))) = (stream, stderr) else {
        return false;
    };
    let mut parts = stream.splitn(2, ':');
    let want_dev = parts.next().and_then(|d| d.parse::<u64>().ok());
    let want_ino = parts.next().and_then(|i| i.parse::<u64>().ok());
    want_dev == Some(dev) && want_ino == Some(ino)
}

/// Whether stderr goes to the journal (decided once).
pub fn stderr_is_journal() -> bool {
    static IS: OnceLock<bool> = OnceLock::new();
    *IS.get_or_init(|| {
        let stream = std::env::var("JOURNAL_STREAM").ok();
        use std::os::unix::fs::MetadataExt;
        let stderr = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata().ok())
            .map(|m| (m.dev(), m.ino()));
        connected(stream.as_deref(), stderr)
    })
}

/// The prefix of a line of `priority`: empty unless stderr is the journal.
pub fn prefix(priority: Priority) -> String {
    match stderr_is_journal() {
        true => format!("<{}>", priority as u8),
        false => String::new(),
    }
}

/// Writes one line (or several: each gets the prefix) to stderr.
pub fn line(priority: Priority, text: &str) {
    let p = prefix(priority);
    for l in text.lines() {
        eprintln!("{p}{l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_stream_systemd_named_is_the_journal() {
        assert!(connected(Some("8:12345"), Some((8, 12345))));
        assert!(!connected(Some("8:12345"), Some((8, 12346))));
        assert!(!connected(None, Some((8, 12345))));
        assert!(!connected(Some("garbage"), Some((8, 12345))));
    }
}
