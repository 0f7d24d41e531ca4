//! `wg-exec up IFACE`: the configuration's plan as a transaction, after settling what an earlier
//! run left (already up, gone, unfinished, or a link that is not ours).

use super::{load, preflight, say, Session};
use crate::cli::Target;
use crate::config::derived;
use crate::executor::{self, Watch};
use crate::faults::{Faults, Watched};
use crate::journal::applied::{self, Applied};
use crate::journal::recovery::{link_present, recover};
use crate::journal::{Journal, JournalFile, State};
use crate::outcome::Outcome;
use crate::plan;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use wg_exec_steps::step::join_human;
use wg_exec_steps::{Kernel, Netns};

pub fn run(t: &Target) -> Outcome {
    let cfg = match load(&t.iface, t.config.as_deref()) {
        Ok(c) => c,
        Err(o) => return o,
    };
    let mut steps = plan::up(&cfg);
    if t.print {
        print!("{}", executor::print(&steps));
        return Outcome::Done;
    }
    if let Err(o) = preflight(&cfg) {
        return o;
    }
    let name = cfg.name.clone();
    let session = match Session::open(&name, Duration::from_secs(t.wait), true) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let recorded = match session.journal() {
        Ok(j) => j,
        Err(u) if u.refused => return Outcome::Refused(u.to_string()),
        Err(u) => {
            return Outcome::Refused(format!(
                "{u}; `wg-exec down {name}` sets it aside and takes the interface down"
            ))
        }
    };
    // The capabilities cover the up and, when there is a journal, its recovery (the link may
    // be in namespaces the configuration no longer names).
    let mut recovery = recorded
        .as_ref()
        .map(|j| plan::down_from_journal(j, false))
        .unwrap_or_default();
    let mut kernel = match session.kernel(&mut [&mut steps, &mut recovery]) {
        Ok(k) => k,
        Err(o) => return o,
    };
    let mut watch = Watched::<JournalFile> {
        journal: None,
        faults: Faults::from_env(session.signalled.clone()),
    };
    if let Err(o) = settle(
        &session.journal_path,
        &cfg,
        recorded,
        &mut kernel,
        &mut watch,
    ) {
        return o;
    }
    let mut jfile = JournalFile {
        path: session.journal_path.clone(),
        journal: Journal::for_up(&cfg),
    };
    let mut watch = Watched {
        journal: Some(&mut jfile),
        faults: Faults::from_env(session.signalled.clone()),
    };
    match executor::up(&mut steps, &mut kernel, &session.signalled, &mut watch) {
        Ok(()) => {
            // What reload and status compare with, written before the journal says "up".
            let applied = applied::path_for(dir_of(&jfile.path), &name);
            let mut record = Applied::of(&cfg);
            record.full_tunnel_table = jfile.journal.full_tunnel_table();
            record.set_resolved(steps.iter().flat_map(|s| s.endpoints_set()));
            if let Err(e) = applied::save(&applied, &record) {
                log::error!("cannot write {}: {e}", applied.display());
            }
            if let Err(e) = jfile.set_state(State::Complete) {
                log::error!("cannot update journal {}: {e}", jfile.path.display());
            }
            log::info!("{name} is up");
            Outcome::Done
        }
        Err(e) if e.incomplete() => {
            let _ = jfile.set_state(State::Incomplete);
            Outcome::LeftBehind(vec![
                e.to_string(),
                format!(
                    "the journal {} keeps what is left; `wg-exec down {name}` tries again",
                    jfile.path.display()
                ),
            ])
        }
        Err(e) => {
            let _ = jfile.remove();
            Outcome::RolledBack(e.to_string())
        }
    }
}

fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Drops the journal of an interface and the records beside it.
fn forget(jpath: &Path) {
    let _ = JournalFile::remove_path(jpath);
    if let Some(name) = jpath.file_stem().and_then(|s| s.to_str()) {
        let _ = applied::remove(&applied::path_for(dir_of(jpath), name));
        let _ = applied::remove(&applied::next_path_for(dir_of(jpath), name));
    }
}

/// The four cases of what an earlier run left, decided before an up: up (refuse), up but its
/// link gone (start over), unfinished (roll it back first, through the executor and `watch`),
/// nothing (refuse a link that is not ours). Ok: the up may go on and `jpath` is gone.
pub fn settle(
    jpath: &Path,
    cfg: &crate::config::Config,
    recorded: Option<Journal>,
    kernel: &mut dyn Kernel,
    watch: &mut dyn Watch,
) -> Result<(), Outcome> {
    let name = &cfg.name;
    match recorded {
        Some(j) if j.is_up() => {
            if link_present(&j, kernel) {
                let reload = match j.state {
                    State::Reloading => {
                        " (a reload of it was interrupted: `wg-exec reload` finishes it)"
                    }
                    _ => "",
                };
                return Err(Outcome::Refused(format!(
                    "it is already up{reload} (journal {}); run `wg-exec down {name}` first",
                    jpath.display()
                )));
            }
            say(
                "up",
                name,
                format!(
                    "the journal {} says it is up, but its link is gone (deleted by hand?); starting over",
                    jpath.display()
                ),
            );
            // What outlives the link (DNS settings a resolvconf entry kept, a full tunnel's
            // rules, firewall tables and sysctl) is undone first: the journal is its only
            // record.
            if !j.dns().is_empty() || !j.policy().is_empty() {
                if let Err(failures) =
                    recover(&j, &mut plan::down_from_journal(&j, false), kernel, watch)
                {
                    let mut lines: Vec<String> =
                        failures.iter().map(|f| format!("recovery: {f}")).collect();
                    lines.push(format!(
                        "what the journal {} records could not be undone; nothing new was done",
                        jpath.display()
                    ));
                    return Err(Outcome::LeftBehind(lines));
                }
            }
            forget(jpath);
        }
        Some(j) => {
            say(
                "up",
                name,
                format!(
                    "an earlier {} by pid {} did not finish; rolling it back first",
                    match j.state {
                        State::Incomplete => "rollback",
                        _ => "up",
                    },
                    j.pid
                ),
            );
            match recover(&j, &mut plan::down_from_journal(&j, false), kernel, watch) {
                Ok(done) => {
                    say(
                        "up",
                        name,
                        format!(
                            "rolled back the unfinished transaction{}",
                            match done.is_empty() {
                                true => " (nothing was left)".to_string(),
                                false => format!(": {}", join_human(&done)),
                            }
                        ),
                    );
                    forget(jpath);
                }
                Err(failures) => {
                    let mut lines: Vec<String> =
                        failures.iter().map(|f| format!("recovery: {f}")).collect();
                    lines.push(format!(
                        "the unfinished transaction could not be rolled back; nothing new was done; the journal {} keeps it",
                        jpath.display()
                    ));
                    return Err(Outcome::LeftBehind(lines));
                }
            }
        }
        None => {
            // Never adopt (or later delete) an interface wg-exec did not create.
            let places: BTreeSet<Netns> =
                [derived::socket_ns(cfg), derived::interface_ns(cfg)].into();
            for ns in &places {
                match kernel.link_exists(ns, name) {
                    Ok(true) => {
                        return Err(Outcome::Refused(format!(
                            "{} already exists and wg-exec has no record of creating it (no journal {}); it is left alone: remove it or choose another name",
                            wg_exec_steps::step::object(name, ns),
                            jpath.display()
                        )))
                    }
                    Ok(false) => {}
                    // A namespace that does not exist yet (pre_setup makes it) has no link.
                    Err(e) if e.is_errno(libc::ENOENT) => {}
                    Err(e) => {
                        return Err(Outcome::Refused(format!(
                            "cannot look for {name} in {ns}: {e}"
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}
