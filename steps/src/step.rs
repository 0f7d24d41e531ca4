//! The one trait every step implements, and the error a step returns.

use crate::kernel::{Kernel, KernelError};
use std::fmt;

/// One unit of work in a plan. `apply` either completes or undoes its own partial work before
/// returning an error; `rollback` undoes a completed `apply`.
pub trait Step {
    /// Short name of the kind of step: "link add", "addresses", "pre_setup"…
    fn name(&self) -> &'static str;
    /// The object it acts on, for messages: "wg0 in netns tunnel".
    fn describe(&self) -> String;
    /// The equivalent commands a person could run, one per line (`--print`). Secrets redacted.
    fn print(&self) -> Vec<String>;
    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError>;
    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError>;
    /// What this step creates on the machine, for the journal that lets a later run undo it
    /// after a crash. Most steps create nothing that outlives the link.
    fn trace(&self) -> Trace {
        Trace::None
    }
}

/// What a step leaves on the machine, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    None,
    /// A link `name` created in `ns`.
    Link {
        name: String,
        ns: crate::Netns,
    },
    /// The link moved from one namespace to another.
    Move {
        name: String,
        from: crate::Netns,
        to: crate::Netns,
    },
    /// A key file that did not exist before.
    KeyFile {
        path: std::path::PathBuf,
    },
    /// Addresses on the link (they go with it).
    Addresses {
        ns: crate::Netns,
        addrs: Vec<ipnet::IpNet>,
    },
    /// Routes through the link (they go with it, so their number and table say enough; a
    /// list of 20,000 destinations would only slow every journal write).
    Routes {
        ns: crate::Netns,
        table: u32,
        count: usize,
    },
}

/// What a step was doing and the kernel's reason it failed, e.g.
/// "add address 192.0.2.1/24 to wg0 in netns tunnel: File exists (os error 17)".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{action}: {cause}")]
pub struct StepError {
    pub action: String,
    pub cause: KernelError,
    /// Failures while the step undid its own partial work.
    pub undo_failures: Vec<StepError>,
}

impl StepError {
    pub fn new(action: impl Into<String>, cause: KernelError) -> StepError {
        StepError {
            action: action.into(),
            cause,
            undo_failures: Vec::new(),
        }
    }

    /// Adds a failure of the step's own cleanup.
    pub fn with_undo(mut self, undo: Vec<StepError>) -> StepError {
        self.undo_failures.extend(undo);
        self
    }
}

/// "wg0 in netns tunnel", "wg0" for the current namespace.
pub fn object(name: &str, ns: &crate::Netns) -> String {
    match ns {
        crate::Netns::Current => name.to_string(),
        other => format!("{name} in {other}"),
    }
}

/// A list of things for messages: "a, b and c".
pub fn join_human(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

impl fmt::Display for crate::Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} table {}", self.dst, self.table)?;
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        Ok(())
    }
}
