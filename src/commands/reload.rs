//! `wg-exec reload IFACE`: change a live interface to match its configuration, touching only
//! what differs, as a transaction (see src/reload.rs for the plan and its order).

use super::{load, preflight, say, Session};
use crate::cli::Target;
use crate::config::derived::interface_ns;
use crate::executor;
use crate::faults::{Faults, Watched};
use crate::journal::applied::{self, Applied};
use crate::journal::checkpoint::ReloadCheckpoint;
use crate::journal::{Journal, JournalFile, State};
use crate::outcome::Outcome;
use crate::plan;
use crate::reload;
use std::path::Path;
use std::time::Duration;
use wg_exec_steps::step::Needs;

/// What up (and the last reload) recorded, joined with what a killed reload may have applied.
fn recorded(dir: &Path, name: &str, journal: &Journal) -> Result<Applied, Outcome> {
    let now = applied::load(&applied::path_for(dir, name)).map_err(Outcome::Refused)?;
    let Some(now) = now else {
        return Err(Outcome::Refused(format!(
            "there is no record of what up applied ({}; written by an older wg-exec?): `systemctl restart` (down and up) brings it under reload",
            applied::path_for(dir, name).display()
        )));
    };
    if journal.state == State::Reloading {
        if let Ok(Some(next)) = applied::load(&applied::next_path_for(dir, name)) {
            return Ok(now.union(&next));
        }
    }
    Ok(now)
}

pub fn run(t: &Target) -> Outcome {
    let file = t
        .config
        .clone()
        .or_else(|| crate::journal::recorded_config(&t.iface));
    let cfg = match load(&t.iface, file.as_deref()) {
        Ok(c) => c,
        Err(o) => return o,
    };
    if let Err(o) = preflight(&cfg) {
        return o;
    }
    let name = cfg.name.clone();
    let session = match Session::open(&name, Duration::from_secs(t.wait), true) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let dir = session
        .journal_path
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let journal = match session.journal() {
        Ok(Some(j)) if j.is_up() => j,
        Ok(Some(j)) => {
            return Outcome::Refused(format!(
                "an earlier up by pid {} did not finish (journal {}): `wg-exec up {name}` rolls it back and comes up",
                j.pid,
                session.journal_path.display()
            ))
        }
        Ok(None) => {
            return Outcome::Refused(format!(
                "it is not up (no journal {}): `wg-exec up {name}` brings it up",
                session.journal_path.display()
            ))
        }
        Err(u) if u.refused => return Outcome::Refused(u.to_string()),
        Err(u) => {
            return Outcome::Refused(format!(
                "{u}; `wg-exec down {name}` sets it aside and takes the interface down"
            ))
        }
    };
    let recorded = match recorded(&dir, &name, &journal) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let fixed = reload::not_live(&cfg, &recorded);
    if !fixed.is_empty() {
        return Outcome::Refused(format!(
            "{} cannot change on a live interface ({}): `wg-exec down {name}` and `wg-exec up {name}` (systemctl restart) apply it",
            if fixed.len() == 1 { "this option" } else { "these options" },
            fixed.join(", ")
        ));
    }
    // Reading and changing the device: its namespace, and the socket namespace for names.
    let mut needs = plan::needs(&plan::up(&cfg));
    needs.module = false;
    needs.hooks = false;
    needs.low_port = false;
    let needs = Needs { ..needs };
    let (mut kernel, _) = match session.kernel_for(&needs) {
        Ok(k) => k,
        Err(o) => return o,
    };
    // The backend and the daemon the journal recorded: only that daemon's socket is used.
    crate::journal::recovery::expect_userspace(&journal, &mut kernel);
    let ns = interface_ns(&cfg);
    let live = match reload::read_live(&mut kernel, &ns, &name) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Outcome::Refused(format!(
                "its link is gone from {ns} (deleted by hand?): `wg-exec down {name}` and `wg-exec up {name}` bring it back"
            ))
        }
        Err(e) => return Outcome::Refused(format!("cannot read {name} in {ns}: {e}")),
    };
    let fixed = reload::not_live_addresses(&cfg, &recorded, &live);
    if !fixed.is_empty() {
        return Outcome::Refused(format!(
            "{} cannot change on a live interface: removing an IPv4 address removes the other addresses of its subnet with it, and the routes when none is left; `wg-exec down {name}` and `wg-exec up {name}` (systemctl restart) apply it",
            fixed.join(", ")
        ));
    }
    let planned = match reload::plan(&cfg, &recorded, &live, &mut kernel) {
        Ok(p) => p,
        Err(e) => return Outcome::Refused(format!("{e}")),
    };
    for n in &planned.notes {
        crate::journald::line(
            crate::journald::Priority::Warning,
            &format!("wg-exec: warning: reload {name}: {n}"),
        );
    }
    let mut steps = planned.steps;
    if t.print {
        print!("{}", executor::print(&steps));
        return Outcome::Done;
    }
    let hooks_changed =
        journal.pre_shutdown != cfg.pre_shutdown || journal.post_shutdown != cfg.post_shutdown;
    let mut jfile = JournalFile {
        path: session.journal_path.clone(),
        journal,
    };
    let mut target = Applied::of(&cfg);
    // The full tunnel's table stays what up chose (its shape cannot change in a reload).
    target.full_tunnel_table = recorded.full_tunnel_table;
    // What names resolved to stays, for the peers whose endpoint stays (refresh's baseline).
    target.keep_resolved(&recorded);
    if steps.is_empty() {
        // Nothing for the kernel. The records may still change: hooks, periods, endpoint
        // spellings, or a reload killed after its last change (then this one closes it).
        let interrupted = jfile.journal.state == State::Reloading;
        if hooks_changed {
            say("reload", &name, "shutdown hooks recorded for the next down");
        }
        if hooks_changed || interrupted {
            jfile.journal.pre_shutdown = cfg.pre_shutdown.clone();
            jfile.journal.post_shutdown = cfg.post_shutdown.clone();
            jfile.journal.state = State::Complete;
            jfile.journal.reload_step = None;
        }
        let record = applied::path_for(&dir, &name);
        // `recorded` is the record on disk, unless a killed reload joined the next one to it.
        let differs = match interrupted {
            true => applied::load(&record).ok().flatten().as_ref() != Some(&target),
            false => recorded != target,
        };
        if differs {
            if let Err(e) = applied::save(&record, &target) {
                return Outcome::Refused(format!("cannot write {}: {e}", record.display()));
            }
        }
        let _ = applied::remove(&applied::next_path_for(&dir, &name));
        if hooks_changed || interrupted {
            if let Err(e) = jfile.save() {
                return Outcome::Refused(format!(
                    "cannot update journal {}: {e}",
                    jfile.path.display()
                ));
            }
        }
        if interrupted {
            say(
                "reload",
                &name,
                "the interrupted reload had applied everything; it is closed",
            );
        }
        log::info!("{name}: nothing to change");
        return Outcome::Done;
    }
    // From here the journal says a reload runs, and the record it is applying is on disk:
    // a killed reload is finished by the next one, and `down` still removes everything.
    let next = applied::next_path_for(&dir, &name);
    // A change the record does not hold (a keepalive, a preshared key, allowed IPs, the MTU
    // the device lost…) writes no record: a killed reload is finished from the record as it is.
    let unchanged = jfile.journal.state != State::Reloading && recorded == target;
    let mut written = !unchanged;
    if written {
        if let Err(e) = applied::save(&next, &target) {
            return Outcome::Refused(format!("cannot write {}: {e}", next.display()));
        }
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
        let mut checkpoint = ReloadCheckpoint { file: &mut jfile };
        let mut watch = Watched {
            journal: Some(&mut checkpoint),
            faults: Faults::from_env(session.signalled.clone()),
        };
        executor::up(&mut steps, &mut kernel, &session.signalled, &mut watch)
    };
    jfile.journal.reload_step = None;
    match result {
        Ok(()) => {
            // A peer whose new endpoint did not resolve keeps its old one: recorded so, the
            // next reload sends the new one again.
            let pending: Vec<applied::PublicKey> = steps
                .iter()
                .flat_map(|s| s.endpoints_pending())
                .map(|k| applied::PublicKey::of(&k))
                .collect();
            let set: Vec<_> = steps.iter().flat_map(|s| s.endpoints_set()).collect();
            if !pending.is_empty() || !set.is_empty() {
                let mut kept = target.clone();
                for key in &pending {
                    match recorded.endpoints.get(key) {
                        Some(old) => kept.endpoints.insert(key.clone(), old.clone()),
                        None => kept.endpoints.remove(key),
                    };
                    match recorded.resolved_endpoints.get(key) {
                        Some(old) => kept.resolved_endpoints.insert(key.clone(), *old),
                        None => kept.resolved_endpoints.remove(key),
                    };
                }
                kept.set_resolved(set);
                if written || kept != target {
                    written = true;
                    if let Err(e) = applied::save(&next, &kept) {
                        log::error!("cannot record the reload in {}: {e}", next.display());
                    }
                }
            }
            if written {
                if let Err(e) = applied::promote(&next, &applied::path_for(&dir, &name)) {
                    log::error!("cannot record the reload in {}: {e}", next.display());
                }
            }
            jfile.journal.pre_shutdown = cfg.pre_shutdown.clone();
            jfile.journal.post_shutdown = cfg.post_shutdown.clone();
            if let Err(e) = jfile.set_state(State::Complete) {
                log::error!("cannot update journal {}: {e}", jfile.path.display());
            }
            log::info!("{name} reloaded");
            Outcome::Done
        }
        Err(e) => {
            let incomplete = e.incomplete();
            if !incomplete {
                let _ = applied::remove(&next);
                let _ = jfile.set_state(State::Complete);
                return Outcome::RolledBack(e.to_string());
            }
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
