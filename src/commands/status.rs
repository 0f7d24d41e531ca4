//! `wg-exec status IFACE`: the frame of the status wing ([`crate::status`]): loads the journal,
//! the record and the configuration, reads the live interface, and prints the model with its
//! drift. Never shows a secret; takes no lock (it only reads).

use super::{load, Session};
use crate::cli::StatusArgs;
use crate::config;
use crate::config::derived::{interface_ns, socket_ns};
use crate::journal::{self, applied};
use crate::outcome::Outcome;
use crate::plan::reload;
use crate::state;
use crate::status::{self, drift, render};
use wg_exec_steps::Needs;

pub fn run(a: &StatusArgs) -> Outcome {
    let name = a.iface.as_str();
    if let Err(m) = config::check_interface_name(name).and_then(|_| state::check_name(name)) {
        return Outcome::Invalid(vec![format!("interface name (command line): {m}")]);
    }
    let dir = journal::state_dir();
    let jpath = journal::path_for(&dir, name);
    // Status only reads: an untrusted state directory is read with a warning, but the
    // configuration file its journal names is not followed.
    let trusted = state::StateDir::open(&dir, state::Access::Change).is_ok();
    let journal = match journal::peek_read_only(&jpath) {
        Ok(Some(j)) if j.is_up() => j,
        Ok(Some(_)) => return Outcome::NotUp("an up did not finish; it is not up".into()),
        Ok(None) => {
            return Outcome::NotUp(format!("it is not up (no journal {})", jpath.display()))
        }
        Err(u) => return Outcome::Unknown(format!("{u}")),
    };
    let recorded = match applied::load_read_only(&applied::path_for(&dir, name)) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Outcome::Unknown(format!(
                "there is no record of what up applied ({})",
                applied::path_for(&dir, name).display()
            ))
        }
        Err(e) => return Outcome::Unknown(e),
    };
    // The configuration, when it loads; its problems are shown as drift, not as a failure.
    let file = a
        .config
        .clone()
        .or_else(|| trusted.then(|| journal.config.clone()));
    let cfg = load(name, file.as_deref()).ok();
    let link_ns = recorded.interface_namespace.clone();
    let mut needs = Needs::namespaces([&link_ns]);
    if let Some(c) = &cfg {
        // It reads the device and plans a reload (never runs one): the namespaces, nothing else.
        needs.add(Needs::namespaces([&socket_ns(c), &interface_ns(c)]));
    }
    // Status only reads: a session without the lock.
    let session = match Session::open_unlocked(name) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let (mut kernel, _) = match session.kernel_for(&needs) {
        Ok(k) => k,
        Err(o) => return o,
    };
    // Read-only: a stale socket is reported, never removed.
    kernel.set_read_only();
    // The backend and the daemon the journal recorded: only that daemon's socket is used.
    journal::recovery::expect_userspace(&journal, &mut kernel);
    let live = match reload::read_live(&mut kernel, &link_ns, name) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Outcome::NotUp(format!(
                "the journal says it is up, but there is no link {name} in {link_ns} (deleted by hand?)"
            ))
        }
        Err(e) => return Outcome::Unknown(format!("cannot read {name} in {link_ns}: {e}")),
    };
    let reload = cfg
        .as_ref()
        .map(|c| drift::Reload::of(c, &recorded, &live, &mut kernel));
    let cfg_reload = cfg.as_ref().zip(reload.as_ref());
    let d = match drift::all(&journal, &recorded, &live, cfg_reload, &mut kernel) {
        Ok(d) => d,
        Err(e) => return Outcome::Unknown(e),
    };
    let status = status::Status::of(&journal, &recorded, &live, d);
    match a.json {
        true => println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("plain data serializes")
        ),
        false => print!("{}", render::text(&status)),
    }
    match status.drift.is_empty() {
        true => Outcome::Done,
        false => Outcome::Drifted(status.drift),
    }
}
