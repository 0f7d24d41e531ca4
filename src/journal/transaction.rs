//! The transaction protocol of up and reload around their plans: what an earlier run left and
//! what up does about it, the journal's state before, during and after, the record of what was
//! applied (IFACE.applied.ron), the one a reload is applying (IFACE.applied-next.ron, renamed
//! over it on success), the endpoints that did not resolve, and closing an interrupted reload.
//! The plans come from the caller (the plan wing, src/plan/): the journal does not make them.

use super::applied::{self, Applied};
use super::checkpoint::ReloadCheckpoint;
use super::recovery::{link_present, recover};
use super::{Journal, JournalFile, State};
use crate::config::{derived, Config};
use crate::executor::{self, Watch};
use crate::faults::{Faults, Watched};
use crate::outcome::{say, Outcome};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use wg_exec_steps::step::join_human;
use wg_exec_steps::Produced;
use wg_exec_steps::{Kernel, Key, Netns, Step};

fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Drops the journal of an interface and the records beside it.
pub fn forget(jpath: &Path) {
    let _ = JournalFile::remove_path(jpath);
    if let Some(name) = jpath.file_stem().and_then(|s| s.to_str()) {
        let _ = applied::remove(&applied::path_for(dir_of(jpath), name));
        let _ = applied::remove(&applied::next_path_for(dir_of(jpath), name));
    }
}

/// What an earlier run left, as up sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// No journal: a link of that name is not wg-exec's, and is never adopted.
    Nothing,
    /// Up, and its link is there: refused (`reloading`: a reload of it was interrupted).
    AlreadyUp { reloading: bool },
    /// Up, but its link is gone (deleted by hand?): start over, after undoing what outlives the
    /// link (`outlives`: DNS settings, a full tunnel's policy) when the journal has some.
    LinkGone { outlives: bool },
    /// An up, or its rollback, did not finish: rolled back first.
    Unfinished,
}

/// The decision of up, from the journal and (asked only of an up one) whether its link is there.
pub fn before_up(journal: Option<&Journal>, link_present: impl FnOnce(&Journal) -> bool) -> Before {
    match journal {
        None => Before::Nothing,
        Some(j) if j.state.needs_recovery() => Before::Unfinished,
        Some(j) if link_present(j) => Before::AlreadyUp {
            reloading: j.state.reload_interrupted(),
        },
        Some(j) => Before::LinkGone {
            outlives: !j.dns().is_empty() || !j.policy().is_empty(),
        },
    }
}

/// Settles what an earlier run left before an up: up (refuse), up but its link gone (start
/// over), unfinished (roll it back first through `recovery`, the journal's down plan without
/// hooks, run by the executor and `watch`), nothing (refuse a link that is not ours). Ok: the up
/// may go on and `jpath` is gone.
pub fn settle(
    jpath: &Path,
    cfg: &Config,
    recorded: Option<Journal>,
    recovery: &mut [Box<dyn Step>],
    kernel: &mut dyn Kernel,
    watch: &mut dyn Watch,
) -> Result<(), Outcome> {
    let name = &cfg.name;
    let decision = before_up(recorded.as_ref(), |j| link_present(j, kernel));
    match (decision, recorded) {
        (Before::AlreadyUp { reloading }, _) => {
            let reload = match reloading {
                true => " (a reload of it was interrupted: `wg-exec reload` finishes it)",
                false => "",
            };
            Err(Outcome::Refused(format!(
                "it is already up{reload} (journal {}); run `wg-exec down {name}` first",
                jpath.display()
            )))
        }
        (Before::LinkGone { outlives }, Some(j)) => {
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
            if outlives {
                recover(&j, recovery, kernel, watch).map_err(|failures| {
                    recovery_failed(
                        &failures,
                        format!(
                            "what the journal {} records could not be undone; nothing new was done",
                            jpath.display()
                        ),
                    )
                })?;
            }
            forget(jpath);
            Ok(())
        }
        (Before::Unfinished, Some(j)) => {
            say(
                "up",
                name,
                format!(
                    "an earlier {} by pid {} did not finish; rolling it back first",
                    j.state.unfinished(),
                    j.pid
                ),
            );
            let done = recover(&j, recovery, kernel, watch).map_err(|failures| {
                recovery_failed(
                    &failures,
                    format!(
                        "the unfinished transaction could not be rolled back; nothing new was done; the journal {} keeps it",
                        jpath.display()
                    ),
                )
            })?;
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
            Ok(())
        }
        (_, _) => not_ours(jpath, cfg, kernel),
    }
}

/// Never adopt (or later delete) an interface wg-exec did not create.
/// What a failed recovery left, each failure named, and `last` saying what that means.
fn recovery_failed(failures: &[crate::executor::Failure], last: String) -> Outcome {
    let mut lines: Vec<String> = failures.iter().map(|f| format!("recovery: {f}")).collect();
    lines.push(last);
    Outcome::LeftBehind(lines)
}

fn not_ours(jpath: &Path, cfg: &Config, kernel: &mut dyn Kernel) -> Result<(), Outcome> {
    let name = &cfg.name;
    let places: BTreeSet<Netns> = [derived::socket_ns(cfg), derived::interface_ns(cfg)].into();
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
    Ok(())
}

/// Runs the up plan `steps` of `cfg` as a transaction kept in the journal at `jpath`: on
/// success the record of what was applied is written, then the journal says up; a failure
/// rolled back removes the journal; one that left something keeps it for `down`.
pub fn up(
    jpath: &Path,
    cfg: &Config,
    steps: &mut [Box<dyn Step>],
    kernel: &mut dyn Kernel,
    signalled: &AtomicBool,
    faults: Faults,
) -> Outcome {
    let name = &cfg.name;
    let mut jfile = JournalFile {
        path: jpath.to_path_buf(),
        journal: Journal::for_up(cfg),
    };
    let mut watch = Watched {
        journal: Some(&mut jfile),
        faults,
    };
    match executor::up(steps, kernel, signalled, &mut watch) {
        Ok(()) => {
            // What reload and status compare with, written before the journal says "up".
            let applied = applied::path_for(dir_of(&jfile.path), name);
            let mut record = Applied::of(cfg);
            record.full_tunnel_table =
                Produced::full_tunnel_table(steps.iter().filter_map(|s| s.produced()));
            record.set_resolved(steps.iter().flat_map(|s| s.endpoints_set()));
            if let Err(e) = applied::save(&applied, &record) {
                log::error!("cannot write {}: {e}", applied.display());
            }
            if let Err(e) = jfile.set_state(State::Running) {
                log::error!("cannot update journal {}: {e}", jfile.path.display());
            }
            log::info!("{name} is up");
            Outcome::Done
        }
        Err(e) if e.incomplete() => {
            let _ = jfile.set_state(State::RollbackIncomplete);
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

/// What up (and the last reload) recorded, joined with what a killed reload may have applied.
pub fn recorded(dir: &Path, name: &str, journal: &Journal) -> Result<Applied, Outcome> {
    let now = applied::load(&applied::path_for(dir, name)).map_err(Outcome::Refused)?;
    let Some(now) = now else {
        return Err(Outcome::Refused(format!(
            "there is no record of what up applied ({}; written by an older wg-exec?): `systemctl restart` (down and up) brings it under reload",
            applied::path_for(dir, name).display()
        )));
    };
    if journal.state.reload_interrupted() {
        if let Ok(Some(next)) = applied::load(&applied::next_path_for(dir, name)) {
            return Ok(now.union(&next));
        }
    }
    Ok(now)
}

/// The record a reload of `cfg` writes, before its steps run: the configuration, with the full
/// tunnel's table up chose (its shape cannot change in a reload) and what names resolved to for
/// the peers whose endpoint stays (refresh's baseline).
pub fn reload_target(cfg: &Config, recorded: &Applied) -> Applied {
    let mut target = Applied::of(cfg);
    target.full_tunnel_table = recorded.full_tunnel_table;
    target.keep_resolved(recorded);
    target
}

/// The record of a reload that succeeded, when some endpoints were set or left pending (else
/// None: `target` stands). A peer whose new endpoint did not resolve keeps its old one: recorded
/// so, the next reload sends the new one again.
pub fn with_endpoints(
    target: &Applied,
    recorded: &Applied,
    pending: &[Key],
    set: Vec<(Key, SocketAddr)>,
) -> Option<Applied> {
    if pending.is_empty() && set.is_empty() {
        return None;
    }
    let mut kept = target.clone();
    for key in pending.iter().map(applied::PublicKey::of) {
        match recorded.endpoints.get(&key) {
            Some(old) => kept.endpoints.insert(key.clone(), old.clone()),
            None => kept.endpoints.remove(&key),
        };
        match recorded.resolved_endpoints.get(&key) {
            Some(old) => kept.resolved_endpoints.insert(key.clone(), *old),
            None => kept.resolved_endpoints.remove(&key),
        };
    }
    kept.set_resolved(set);
    Some(kept)
}

/// The next record a reload writes before its first step, what a kill leaves for the next
/// reload to join: the target; finishing a killed reload, the target joined with what that one
/// may have left (`recorded` is the record and its next record joined), so that a second kill
/// does not forget the addresses and routes the first one added.
pub fn running_record<'a>(
    recorded: &Applied,
    target: &'a Applied,
    interrupted: bool,
) -> std::borrow::Cow<'a, Applied> {
    match interrupted {
        true => std::borrow::Cow::Owned(recorded.union(target)),
        false => std::borrow::Cow::Borrowed(target),
    }
}

/// A reload with nothing for the kernel: the records may still change (hooks, periods,
/// endpoint spellings), and a reload killed after its last change is closed.
pub fn reload_nothing(
    jfile: &mut JournalFile,
    cfg: &Config,
    recorded: &Applied,
    target: &Applied,
) -> Result<(), Outcome> {
    let name = &cfg.name;
    let dir = dir_of(&jfile.path).to_path_buf();
    let hooks_changed = hooks_changed(&jfile.journal, cfg);
    let interrupted = jfile.journal.state.reload_interrupted();
    if hooks_changed {
        say("reload", name, "shutdown hooks recorded for the next down");
    }
    if hooks_changed || interrupted {
        jfile.journal.pre_shutdown = cfg.pre_shutdown.clone();
        jfile.journal.post_shutdown = cfg.post_shutdown.clone();
        jfile.journal.state = State::Running;
        jfile.journal.reload_step = None;
    }
    let record = applied::path_for(&dir, name);
    // `recorded` is the record on disk, unless a killed reload joined the next one to it.
    let differs = match interrupted {
        true => applied::load(&record).ok().flatten().as_ref() != Some(target),
        false => recorded != target,
    };
    if differs {
        applied::save(&record, target)
            .map_err(|e| Outcome::Refused(format!("cannot write {}: {e}", record.display())))?;
    }
    let _ = applied::remove(&applied::next_path_for(&dir, name));
    if hooks_changed || interrupted {
        jfile.save().map_err(|e| {
            Outcome::Refused(format!(
                "cannot update journal {}: {e}",
                jfile.path.display()
            ))
        })?;
    }
    if interrupted {
        say(
            "reload",
            name,
            "the interrupted reload had applied everything; it is closed",
        );
    }
    log::info!("{name}: nothing to change");
    Ok(())
}

fn hooks_changed(journal: &Journal, cfg: &Config) -> bool {
    journal.pre_shutdown != cfg.pre_shutdown || journal.post_shutdown != cfg.post_shutdown
}

/// Runs a reload's `steps` as a transaction: the record it applies is written beside the
/// current one and the journal says a reload runs (a killed reload is finished by the next, and
/// `down` still removes everything); on success the record is renamed over the current one and
/// the journal says up again; a failure rolled back leaves the current record.
#[allow(clippy::too_many_arguments)]
pub fn reload(
    jfile: &mut JournalFile,
    cfg: &Config,
    recorded: &Applied,
    target: &Applied,
    steps: &mut [Box<dyn Step>],
    kernel: &mut dyn Kernel,
    signalled: &AtomicBool,
    faults: Faults,
) -> Outcome {
    let name = &cfg.name;
    let dir = dir_of(&jfile.path).to_path_buf();
    let next = applied::next_path_for(&dir, name);
    // A change the record does not hold (a keepalive, a preshared key, allowed IPs, the MTU the
    // device lost…) writes no record: a killed reload is finished from the record as it is.
    let interrupted = jfile.journal.state.reload_interrupted();
    let written = interrupted || recorded != target;
    if written {
        if let Err(e) = applied::save(&next, &running_record(recorded, target, interrupted)) {
            return Outcome::Refused(format!("cannot write {}: {e}", next.display()));
        }
    } else if let Err(e) = applied::remove(&next) {
        // A next record left by an earlier failure must not be joined if this one is killed.
        return Outcome::Refused(format!("cannot remove {}: {e}", next.display()));
    }
    jfile.journal.state = State::Reloading;
    if let Err(e) = jfile.save() {
        let _ = applied::remove(&next);
        return Outcome::Refused(format!(
            "cannot update journal {}: {e}",
            jfile.path.display()
        ));
    }
    let result = {
        let mut checkpoint = ReloadCheckpoint { file: jfile };
        let mut watch = Watched {
            journal: Some(&mut checkpoint),
            faults,
        };
        executor::up(steps, kernel, signalled, &mut watch)
    };
    jfile.journal.reload_step = None;
    match result {
        Ok(()) => {
            let pending: Vec<Key> = steps.iter().flat_map(|s| s.endpoints_pending()).collect();
            let set: Vec<_> = steps.iter().flat_map(|s| s.endpoints_set()).collect();
            let kept = with_endpoints(target, recorded, &pending, set);
            let last = kept.as_ref().unwrap_or(target);
            // The next record on disk is `last` already unless endpoints changed it, or it is
            // the union written while finishing a killed reload.
            let next_is_last = written && !interrupted && kept.is_none();
            if (written || last != recorded) && !next_is_last {
                if let Err(e) = applied::save(&next, last) {
                    log::error!("cannot record the reload in {}: {e}", next.display());
                }
            }
            if written || last != recorded {
                if let Err(e) = applied::promote(&next, &applied::path_for(&dir, name)) {
                    log::error!("cannot record the reload in {}: {e}", next.display());
                }
            }
            jfile.journal.pre_shutdown = cfg.pre_shutdown.clone();
            jfile.journal.post_shutdown = cfg.post_shutdown.clone();
            if let Err(e) = jfile.set_state(State::Running) {
                log::error!("cannot update journal {}: {e}", jfile.path.display());
            }
            log::info!("{name} reloaded");
            Outcome::Done
        }
        // Rolled back after finishing part of a killed reload: the device is as that one left
        // it, so the journal still says a reload is unfinished and the union stays the next
        // record (the next reload converges and counts its addresses and routes as ours).
        Err(e) if !e.incomplete() && interrupted => {
            let _ = jfile.save();
            Outcome::RolledBack(e.to_string())
        }
        Err(e) if !e.incomplete() => {
            let _ = applied::remove(&next);
            let _ = jfile.set_state(State::Running);
            Outcome::RolledBack(e.to_string())
        }
        Err(e) => {
            let _ = jfile.save();
            Outcome::LeftBehind(vec![
                e.to_string(),
                format!(
                    "the journal {} says a reload is unfinished; the next `wg-exec reload {name}` converges, `wg-exec down {name}` removes everything",
                    jfile.path.display()
                ),
            ])
        }
    }
}
