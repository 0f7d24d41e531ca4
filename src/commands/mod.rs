//! One room per command. What they share is here: loading the configuration, and the
//! [`Session`] every command that touches the system opens first (signals, the state directory,
//! the interface's lock), then the kernel with exactly the capabilities its plan needs.

pub mod check;
pub mod convert;
pub mod down;
pub mod refresh;
pub mod reload;
pub mod status;
pub mod up;

use crate::config::{self, Config, RouteTables};
use crate::journal::{self, Journal, Unusable};
use crate::journald::{self, Priority};
use crate::linux::LinuxKernel;
use crate::lock::{self, Lock};
use crate::outcome::Outcome;
use crate::plan::{self, Plan};
use crate::state::{self, StateDir};
use crate::{preflight, privileges};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use wg_exec_steps::{Needs, StepKind};

pub use crate::outcome::say;

/// The configuration of `iface`, its warnings printed; bad configuration is `Invalid`.
pub fn load(iface: &str, explicit: Option<&Path>) -> Result<Config, Outcome> {
    let path = config::config_path(iface, explicit);
    match config::load(iface, &path, &RouteTables::system()) {
        Ok((cfg, warnings)) => {
            for w in warnings {
                journald::line(Priority::Warning, &format!("wg-exec: warning: {w}"));
            }
            Ok(cfg)
        }
        Err(errors) => Err(Outcome::Invalid(
            errors.0.iter().map(|e| e.to_string()).collect(),
        )),
    }
}

/// File and namespace checks that change nothing; warnings printed, errors `Invalid`.
pub fn preflight(cfg: &Config) -> Result<(), Outcome> {
    let mut p = preflight::run(cfg, Path::new(preflight::NETNS_DIR));
    if !cfg.dns.is_empty() {
        let backend = crate::linux::dns_available();
        match backend {
            Some(b) => log::debug!("dns: {b} will set the servers"),
            None => p.errors.extend(preflight::dns(cfg, backend)),
        }
    }
    for w in &p.warnings {
        journald::line(Priority::Warning, &format!("wg-exec: warning: {w}"));
    }
    match p.errors.is_empty() {
        true => Ok(()),
        false => Err(Outcome::Invalid(
            p.errors.iter().map(|e| e.to_string()).collect(),
        )),
    }
}

/// SIGTERM, SIGINT and SIGHUP set the returned flag.
fn signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&flag)) {
            log::warn!("cannot watch signal {sig}: {e}");
        }
    }
    flag
}

/// A command's hold on one interface: the lock is held until it is dropped.
pub struct Session {
    pub iface: String,
    /// Set by SIGTERM, SIGINT or SIGHUP.
    pub signalled: Arc<AtomicBool>,
    pub journal_path: PathBuf,
    _lock: Option<Lock>,
}

impl Session {
    /// Watches signals, creates the state directory and takes the interface's lock, waiting
    /// at most `wait` (a signal ends the wait when `interruptible`).
    pub fn open(iface: &str, wait: Duration, interruptible: bool) -> Result<Session, Outcome> {
        state::check_name(iface).map_err(|m| Outcome::Invalid(vec![m]))?;
        let signalled = signals();
        // Created 0700 when missing; one that is not this user's, or that others may write,
        // is refused before anything is read from it.
        let dir =
            StateDir::create(&journal::state_dir()).map_err(|e| Outcome::Refused(e.to_string()))?;
        let never = Arc::new(AtomicBool::new(false));
        let stop_waiting = if interruptible { &signalled } else { &never };
        let lock = lock::acquire_in(&dir, iface, wait, stop_waiting).map_err(Outcome::Refused)?;
        Ok(Session {
            iface: iface.to_string(),
            journal_path: journal::path_for(dir.path(), iface),
            signalled,
            _lock: Some(lock),
        })
    }

    /// A session that only reads (status): signals noted, no state directory created, no lock.
    pub fn open_unlocked(iface: &str) -> Result<Session, Outcome> {
        state::check_name(iface).map_err(|m| Outcome::Invalid(vec![m]))?;
        Ok(Session {
            iface: iface.to_string(),
            journal_path: journal::path_for(&journal::state_dir(), iface),
            signalled: signals(),
            _lock: None,
        })
    }

    /// The interface's journal, read under the lock.
    pub fn journal(&self) -> Result<Option<Journal>, Unusable> {
        journal::load(&self.journal_path)
    }

    /// The kernel, opened with every capability wg-exec was given (PID 1's namespace is
    /// opened here), then capabilities checked against and dropped to what `plans` need. A
    /// modprobe that the capabilities do not allow is removed from `plans`.
    pub fn kernel(&self, plans: &mut [&mut Plan]) -> Result<LinuxKernel, Outcome> {
        let mut needs = Needs::default();
        for p in plans.iter() {
            needs.add(plan::needs(p));
        }
        let (kernel, kept) = self.kernel_for(&needs)?;
        if !kept.modprobe {
            for p in plans.iter_mut() {
                p.retain(|s| s.kind() != StepKind::Modprobe);
            }
        }
        Ok(kernel)
    }

    /// The kernel with the capabilities `needs` asks for, and no others.
    pub fn kernel_for(&self, needs: &Needs) -> Result<(LinuxKernel, privileges::Kept), Outcome> {
        let kernel = LinuxKernel::new(self.signalled.clone())
            .map_err(|e| Outcome::Refused(format!("{e:#}")))?;
        // A userspace device of another user (a non-root unit's, handled here by root): its
        // UAPI socket is that user's, which only CAP_DAC_OVERRIDE lets root reach.
        let mut extra = Vec::new();
        let socket = Path::new("/var/run/wireguard").join(format!("{}.sock", self.iface));
        if let Ok(meta) = std::fs::metadata(&socket) {
            use std::os::unix::fs::MetadataExt;
            if meta.uid() != nix::unistd::geteuid().as_raw() {
                extra.push(caps::Capability::CAP_DAC_OVERRIDE);
            }
        }
        let kept =
            privileges::check_and_drop_keeping(needs, &extra, crate::linux::is_current_netns)
                .map_err(Outcome::Unusable)?;
        Ok((kernel, kept))
    }
}
