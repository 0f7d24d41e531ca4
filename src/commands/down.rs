//! `wg-exec down IFACE`: the journal's down plan when there is a usable journal, else the
//! configuration's. Every step runs (failures are collected); the journal is removed once the
//! link is gone.

use super::{load, say, Session};
use crate::cli::Target;
use crate::config;
use crate::executor::{self, Watch};
use crate::faults::{Faults, Watched};
use crate::journal::recovery::expect_userspace;
use crate::journal::{self, applied, JournalFile, Unusable};
use crate::outcome::{Outcome, Script};
use crate::plan::DownSource;
use crate::state;
use std::path::Path;
use std::time::Duration;
use wg_exec_steps::Kernel;
use wg_exec_steps::StepKind;

/// What down follows, given what reading the journal gave: the journal itself, else the
/// configuration (loaded and validated). The real run and `--print` both choose here.
pub fn choose(
    t: &Target,
    journal: Result<Option<journal::Journal>, Unusable>,
) -> Result<DownSource, Outcome> {
    match journal {
        Ok(Some(j)) => Ok(DownSource::Journal(j)),
        Ok(None) => Ok(DownSource::Config(
            Box::new(load(&t.iface, t.config.as_deref())?),
            None,
        )),
        // Not wg-exec's: neither followed nor set aside, whatever the configuration says.
        Err(u) if u.refused => Err(Outcome::Refused(u.to_string())),
        Err(u) => match load(&t.iface, t.config.as_deref()) {
            Ok(cfg) => Ok(DownSource::Config(Box::new(cfg), Some(u))),
            Err(Outcome::Invalid(mut errors)) => {
                errors.insert(0, format!("{u}, and the configuration cannot replace it:"));
                Err(Outcome::Invalid(errors))
            }
            Err(o) => Err(o),
        },
    }
}

pub fn run(t: &Target) -> Script {
    let name = t.iface.as_str();
    config::check_interface_name(name)
        .and_then(|_| state::check_name(name))
        .map_err(|m| Outcome::Invalid(vec![format!("interface name (command line): {m}")]))?;
    // Where wg-exec runs is a fact the configuration's down plan is given.
    let foreign_netns = crate::preflight::in_foreign_netns();
    if t.print {
        let path = journal::path_for(&journal::state_dir(), name);
        let source = choose(t, journal::peek_read_only(&path))?;
        if let DownSource::Config(_, Some(u)) = &source {
            say(
                "down",
                name,
                format!("{u}: a real down sets it aside and follows the configuration"),
            );
        }
        print!("{}", executor::print(&source.plan(foreign_netns)));
        return Ok(Outcome::Done);
    }
    // Down is not interrupted by signals: they are noted and the work goes on.
    let session = Session::open(name, Duration::from_secs(t.wait), false)?;
    let source = choose(t, session.journal())?;
    match &source {
        DownSource::Journal(_) => {
            log::debug!("following the journal {}", session.journal_path.display())
        }
        DownSource::Config(_, None) => say(
            "down",
            name,
            format!(
                "no journal ({}): falling back to the configuration",
                session.journal_path.display()
            ),
        ),
        DownSource::Config(_, Some(u)) => {
            // Kept for a person to read, never deleted; the configuration takes its place.
            let aside = match journal::set_aside(&u.path) {
                Ok(p) => format!("set aside as {}", p.display()),
                Err(e) => format!("it could not be set aside ({e})"),
            };
            say(
                "down",
                name,
                format!("{u}; {aside}; falling back to the configuration"),
            );
        }
    }
    let mut steps = source.plan(foreign_netns);
    let mut kernel = session.kernel(&mut [&mut steps])?;
    match &source {
        DownSource::Journal(j) => expect_userspace(j, &mut kernel),
        DownSource::Config(c, _) => {
            kernel.expect_from_config(&c.name, &c.backend, &crate::config::derived::socket_ns(c))
        }
    }
    let mut watch: Watched<JournalFile> = Watched {
        journal: None,
        faults: Faults::from_env(session.signalled.clone()),
    };
    Ok(execute(
        &source,
        steps,
        &mut kernel,
        &session.journal_path,
        &mut watch,
    ))
}

/// Runs a down plan: every step, failures collected. The journal is left as it is until the
/// link is gone: a down killed half-way is repeated by the next down, and the next up either
/// finds the link (and asks for a down) or finds it gone (and starts over).
pub fn execute(
    source: &DownSource,
    mut steps: crate::plan::Plan,
    kernel: &mut dyn Kernel,
    journal_path: &Path,
    watch: &mut dyn Watch,
) -> Outcome {
    let failures = executor::down(&mut steps, kernel, watch);
    // What outlives a failed step: the link, or DNS settings (a resolvconf entry).
    let teardown = failures
        .iter()
        .find(|f| matches!(f.step, StepKind::Teardown | StepKind::Dns));
    if teardown.is_none() {
        let iface = match source {
            DownSource::Journal(j) => {
                if let Err(e) = JournalFile::remove_path(journal_path) {
                    log::error!("cannot remove journal {}: {e}", journal_path.display());
                }
                j.interface.clone()
            }
            DownSource::Config(c, _) => c.name.clone(),
        };
        // The records of what was applied go with the interface (also when the journal was
        // lost or unusable).
        let dir = journal_path.parent().unwrap_or(Path::new("."));
        for p in [
            applied::path_for(dir, &iface),
            applied::next_path_for(dir, &iface),
        ] {
            if let Err(e) = applied::remove(&p) {
                log::error!("cannot remove {}: {e}", p.display());
            }
        }
    }
    if failures.is_empty() {
        return Outcome::Done;
    }
    let mut lines: Vec<String> = failures.iter().map(|f| f.to_string()).collect();
    match teardown {
        None => Outcome::HookFailed(lines),
        Some(f) => {
            let what = match f.step {
                StepKind::Dns => format!("the DNS settings of {}", f.object),
                _ => f.object.clone(),
            };
            lines.push(match source {
                DownSource::Journal(_) => format!(
                    "left behind: {what}; the journal {} keeps it for the next down",
                    journal_path.display()
                ),
                DownSource::Config(..) => format!("left behind: {what}"),
            });
            Outcome::LeftBehind(lines)
        }
    }
}
