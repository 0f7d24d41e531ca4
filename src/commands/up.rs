//! `wg-exec up IFACE`: the configuration's plan as a transaction (`journal::transaction`), after
//! settling what an earlier run left (already up, gone, unfinished, or a link that is not ours).

use super::{load, preflight, Session};
use crate::cli::Target;
use crate::executor;
use crate::faults::{Faults, Watched};
use crate::journal::{transaction, JournalFile};
use crate::outcome::{Outcome, Script};
use crate::plan;
use std::time::Duration;

pub fn run(t: &Target) -> Script {
    let cfg = load(&t.iface, t.config.as_deref())?;
    let mut steps = plan::up(&cfg);
    if t.print {
        print!("{}", executor::print(&steps));
        return Ok(Outcome::Done);
    }
    preflight(&cfg)?;
    let name = cfg.name.clone();
    let session = Session::open(&name, Duration::from_secs(t.wait), true)?;
    let recorded = session.journal().map_err(|u| match u.refused {
        true => Outcome::Refused(u.to_string()),
        false => Outcome::Refused(format!(
            "{u}; `wg-exec down {name}` sets it aside and takes the interface down"
        )),
    })?;
    // The capabilities cover the up and, when there is a journal, its recovery (the link may
    // be in namespaces the configuration no longer names).
    let mut recovery = recorded
        .as_ref()
        .map(|j| plan::down_from_journal(j, false))
        .unwrap_or_default();
    let mut kernel = session.kernel(&mut [&mut steps, &mut recovery])?;
    let mut watch = Watched::<JournalFile> {
        journal: None,
        faults: Faults::from_env(session.signalled.clone()),
    };
    let jpath = &session.journal_path;
    transaction::settle(
        jpath,
        &cfg,
        recorded,
        &mut recovery,
        &mut kernel,
        &mut watch,
    )?;
    let faults = Faults::from_env(session.signalled.clone());
    Ok(transaction::up(
        jpath,
        &cfg,
        &mut steps,
        &mut kernel,
        &session.signalled,
        faults,
    ))
}
