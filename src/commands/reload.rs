//! `wg-exec reload IFACE`: change a live interface to match its configuration, touching only
//! what differs (the plan: src/plan/reload.rs), as a transaction (src/journal/transaction.rs).

use super::{load, preflight, Session};
use crate::cli::Target;
use crate::config::derived::interface_ns;
use crate::executor;
use crate::faults::Faults;
use crate::journal::{transaction, JournalFile};
use crate::outcome::{Outcome, Script};
use crate::plan::reload;
use std::path::Path;
use std::time::Duration;

pub fn run(t: &Target) -> Script {
    let file = t
        .config
        .clone()
        .or_else(|| crate::journal::recorded_config(&t.iface));
    let cfg = load(&t.iface, file.as_deref())?;
    preflight(&cfg)?;
    let name = cfg.name.clone();
    let session = Session::open(&name, Duration::from_secs(t.wait), true)?;
    let jpath = &session.journal_path;
    let dir = jpath.parent().unwrap_or(Path::new(".")).to_path_buf();
    let journal = match session.journal() {
        Ok(Some(j)) if j.state.can_reload() => j,
        Ok(Some(j)) => return Err(Outcome::Refused(format!(
            "an earlier up by pid {} did not finish (journal {}): `wg-exec up {name}` rolls it back and comes up",
            j.pid,
            jpath.display()
        ))),
        Ok(None) => return Err(Outcome::Refused(format!(
            "it is not up (no journal {}): `wg-exec up {name}` brings it up",
            jpath.display()
        ))),
        Err(u) if u.refused => return Err(Outcome::Refused(u.to_string())),
        Err(u) => return Err(Outcome::Refused(format!(
            "{u}; `wg-exec down {name}` sets it aside and takes the interface down"
        ))),
    };
    let recorded = transaction::recorded(&dir, &name, &journal)?;
    let fixed = reload::not_live(&cfg, &recorded);
    if !fixed.is_empty() {
        return Err(Outcome::Refused(format!(
            "{} cannot change on a live interface ({}): `wg-exec down {name}` and `wg-exec up {name}` (systemctl restart) apply it",
            if fixed.len() == 1 { "this option" } else { "these options" },
            fixed.join(", ")
        )));
    }
    // Reading and changing the device: what the reload's steps need.
    let (mut kernel, _) = session.kernel_for(&reload::needs(&cfg))?;
    // The backend and the daemon the journal recorded: only that daemon's socket is used.
    crate::journal::recovery::expect_userspace(&journal, &mut kernel);
    let ns = interface_ns(&cfg);
    let live = reload::read_live(&mut kernel, &ns, &name)
        .map_err(|e| Outcome::Refused(format!("cannot read {name} in {ns}: {e}")))?
        .ok_or_else(|| Outcome::Refused(format!(
            "its link is gone from {ns} (deleted by hand?): `wg-exec down {name}` and `wg-exec up {name}` bring it back"
        )))?;
    let fixed = reload::not_live_addresses(&cfg, &recorded, &live);
    if !fixed.is_empty() {
        return Err(Outcome::Refused(format!(
            "{} cannot change on a live interface: removing an IPv4 address removes the other addresses of its subnet with it, and the routes when none is left; `wg-exec down {name}` and `wg-exec up {name}` (systemctl restart) apply it",
            fixed.join(", ")
        )));
    }
    let planned = reload::plan(&cfg, &recorded, &live, &mut kernel)
        .map_err(|e| Outcome::Refused(format!("{e}")))?;
    for n in &planned.notes {
        crate::journald::line(
            crate::journald::Priority::Warning,
            &format!("wg-exec: warning: reload {name}: {n}"),
        );
    }
    let mut steps = planned.steps;
    if t.print {
        print!("{}", executor::print(&steps));
        return Ok(Outcome::Done);
    }
    let mut jfile = JournalFile {
        path: jpath.clone(),
        journal,
    };
    let target = transaction::reload_target(&cfg, &recorded);
    if steps.is_empty() {
        transaction::reload_nothing(&mut jfile, &cfg, &recorded, &target)?;
        return Ok(Outcome::Done);
    }
    let faults = Faults::from_env(session.signalled.clone());
    Ok(transaction::reload(
        &mut jfile,
        &cfg,
        &recorded,
        &target,
        &mut steps,
        &mut kernel,
        &session.signalled,
        faults,
    ))
}
