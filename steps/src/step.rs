//! The one trait every step implements, and the error a step returns.

use crate::kernel::{Kernel, KernelError, Netns};
use std::collections::BTreeSet;
use std::fmt;

/// What kind of work a step does. Code decides on this (the exit code of a failed teardown,
/// skipping modprobe, the fault switches of test builds); [`StepKind::name`] is only for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StepKind {
    GenerateKeyFile,
    RemoveKeyFile,
    Modprobe,
    PreSetup,
    LinkAdd,
    NetnsMove,
    Mtu,
    Addresses,
    Key,
    LinkUp,
    PeerSet,
    Routes,
    PostSetup,
    PreShutdown,
    Teardown,
    PostShutdown,
    // A reload's own kinds.
    DeviceSet,
    PeerUpdate,
    PeerRemove,
    RoutesRemove,
    AddressesRemove,
    KeyRotate,
    // A full tunnel's (`table: "auto"`).
    AutoMtu,
    Fwmark,
    Rules,
    DefaultRoute,
    Firewall,
    Sysctl,
    PolicyTeardown,
    /// The link's DNS servers and domains (up), and their revert (down).
    Dns,
}

impl StepKind {
    pub const ALL: [StepKind; 30] = [
        StepKind::GenerateKeyFile,
        StepKind::RemoveKeyFile,
        StepKind::Modprobe,
        StepKind::PreSetup,
        StepKind::LinkAdd,
        StepKind::NetnsMove,
        StepKind::Mtu,
        StepKind::Addresses,
        StepKind::Key,
        StepKind::LinkUp,
        StepKind::PeerSet,
        StepKind::Routes,
        StepKind::PostSetup,
        StepKind::PreShutdown,
        StepKind::Teardown,
        StepKind::PostShutdown,
        StepKind::DeviceSet,
        StepKind::PeerUpdate,
        StepKind::PeerRemove,
        StepKind::RoutesRemove,
        StepKind::AddressesRemove,
        StepKind::KeyRotate,
        StepKind::AutoMtu,
        StepKind::Fwmark,
        StepKind::Rules,
        StepKind::DefaultRoute,
        StepKind::Firewall,
        StepKind::Sysctl,
        StepKind::PolicyTeardown,
        StepKind::Dns,
    ];

    /// How messages name it: "link add", "addresses", "pre_setup"…
    pub fn name(self) -> &'static str {
        match self {
            StepKind::GenerateKeyFile => "generate key file",
            StepKind::RemoveKeyFile => "remove key file",
            StepKind::Modprobe => "modprobe",
            StepKind::PreSetup => "pre_setup",
            StepKind::LinkAdd => "link add",
            StepKind::NetnsMove => "netns move",
            StepKind::Mtu => "mtu",
            StepKind::Addresses => "addresses",
            StepKind::Key => "key",
            StepKind::LinkUp => "up",
            StepKind::PeerSet => "peer set",
            StepKind::Routes => "route",
            StepKind::PostSetup => "post_setup",
            StepKind::PreShutdown => "pre_shutdown",
            StepKind::Teardown => "teardown",
            StepKind::PostShutdown => "post_shutdown",
            StepKind::DeviceSet => "device set",
            StepKind::PeerUpdate => "peer update",
            StepKind::PeerRemove => "peer remove",
            StepKind::RoutesRemove => "route remove",
            StepKind::AddressesRemove => "addresses remove",
            StepKind::KeyRotate => "key rotate",
            StepKind::AutoMtu => "auto mtu",
            StepKind::Fwmark => "fwmark",
            StepKind::Rules => "rules",
            StepKind::DefaultRoute => "default route",
            StepKind::Firewall => "firewall",
            StepKind::Sysctl => "sysctl",
            StepKind::PolicyTeardown => "full tunnel teardown",
            StepKind::Dns => "dns",
        }
    }

    /// The kind a person (or a test's WG_EXEC_FAULT) names.
    pub fn from_name(name: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a step needs from the process that runs it. The capabilities a plan keeps are derived
/// from the union of its steps' needs, in one place, so that the check before the first step and
/// the drop cannot disagree with what the steps do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Namespaces other than the current one whose sockets the step opens, where it resolves
    /// names or starts a process (by setns), or to which it moves a link.
    pub namespaces: BTreeSet<Netns>,
    /// Loads a kernel module (skipped, not failed, without the capability).
    pub module: bool,
    /// Starts a userspace WireGuard that will bind a UDP port below 1024.
    pub low_port: bool,
    /// Runs user commands, whose needs nobody knows.
    pub hooks: bool,
}

impl Needs {
    /// Needs that are only the namespaces given (the current one needs nothing).
    pub fn namespaces<'a>(list: impl IntoIterator<Item = &'a Netns>) -> Needs {
        Needs {
            namespaces: list
                .into_iter()
                .filter(|n| **n != Netns::Current)
                .cloned()
                .collect(),
            ..Needs::default()
        }
    }

    pub fn add(&mut self, other: Needs) {
        self.namespaces.extend(other.namespaces);
        self.module |= other.module;
        self.low_port |= other.low_port;
        self.hooks |= other.hooks;
    }
}

/// One unit of work in a plan. `apply` either completes or undoes its own partial work before
/// returning an error; `rollback` undoes a completed `apply`.
pub trait Step {
    /// The kind of work, for decisions.
    fn kind(&self) -> StepKind;
    /// The kind's name, for messages: "link add", "addresses", "pre_setup"…
    fn name(&self) -> &'static str {
        self.kind().name()
    }
    /// What the step needs from the process (namespaces it enters, a module, hooks).
    fn needs(&self) -> Needs;
    /// The object it acts on, for messages: "wg0 in netns tunnel".
    fn describe(&self) -> String;
    /// The equivalent commands a person could run, one per line (`--print`). Secrets redacted.
    fn print(&self) -> Vec<String>;
    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError>;
    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError>;
    /// Whether `rollback` would change nothing now (modprobe keeps the module, a hook has no
    /// undo, a key file that existed stays): messages list only what was actually undone.
    fn rollback_is_noop(&self) -> bool {
        false
    }
    /// What this step creates on the machine, for the journal that lets a later run undo it
    /// after a crash. Most steps create nothing that outlives the link.
    fn trace(&self) -> Trace {
        Trace::None
    }
    /// After `apply`: peers whose new endpoint did not resolve, and that keep the endpoint they
    /// had. What wg-exec records must say so, or the change would look done.
    fn endpoints_pending(&self) -> Vec<crate::Key> {
        Vec::new()
    }
    /// After `apply`: the endpoints this step resolved from a host name and set, by peer (what
    /// `wg-exec refresh` compares later answers with, to tell a DNS change from a roam).
    fn endpoints_set(&self) -> Vec<(crate::Key, std::net::SocketAddr)> {
        Vec::new()
    }
    /// After `apply`: what this step chose that later steps take (the full tunnel's table). The
    /// executor collects it, and the command reads it from the steps, typed.
    fn produced(&self) -> Option<crate::Produced> {
        None
    }
    /// Before `apply` (and before the journal reads its [`Step::trace`]): what the steps
    /// before it in the plan produced, in order.
    fn takes(&mut self, _earlier: &[crate::Produced]) {}
}

/// What a step leaves on the machine, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    /// A full tunnel's rules, unreachable route or firewall tables: they outlive the link.
    Policy {
        ns: crate::Netns,
        objects: Vec<crate::policy::PolicyObject>,
    },
    /// A sysctl the step may change; the journal reads and keeps its value before.
    Sysctl {
        ns: crate::Netns,
        path: String,
    },
    /// DNS settings of link `name`: a resolvconf entry outlives the link, so the journal
    /// records it (with the backend that will apply it) before the step runs.
    Dns {
        name: String,
        ns: crate::Netns,
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

    /// A rollback's result from its failures: the first one, carrying the others.
    pub fn first_of(errors: Vec<StepError>) -> Result<(), StepError> {
        let mut it = errors.into_iter();
        match it.next() {
            None => Ok(()),
            Some(e) => Err(e.with_undo(it.collect())),
        }
    }
}

/// "wg0 in netns tunnel", "wg0" for the current namespace.
pub fn object(name: &str, ns: &crate::Netns) -> String {
    match ns {
        crate::Netns::Current => name.to_string(),
        other => format!("{name} in {other}"),
    }
}

/// A count for messages: "1 peer", "2 peers".
pub fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
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
