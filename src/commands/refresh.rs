//! `wg-exec refresh IFACE`: follows DNS for peers whose endpoint is a host name, without
//! fighting roaming and without ever removing a peer. Peers, their configured endpoints and
//! their periods come from what up (or the last reload) applied, re-read when it changes; the
//! loop ends when the interface is taken down.
//!
//! Each due peer's name is resolved where the UDP socket is (the socket namespace, with its
//! /etc/netns files), and the answer is compared with the baseline: what the name resolved to
//! when up or a reload set it, or what refresh last pushed, kept in the record of what was
//! applied (so a change made while no refresh ran is seen by the first pass, `--once` too). The
//! decision is `crate::refresh::decide`: an answer without the baseline is a DNS change, pushed
//! (as an update of that peer and nothing else) unless the live endpoint is among the answers;
//! a live endpoint elsewhere while the answer still has the baseline is a roam, left alone until
//! its handshake is stale (older than 135 s, or never). Round-robin answers are left alone. A
//! failed lookup of any kind keeps the endpoint, is logged once per streak and retried after the
//! restart delay. The device is read only when an answer differs from the baseline, for a peer
//! without an endpoint, or every 135 s (staleness cannot be seen sooner): unchanged answers
//! cost no request. A new baseline is written under the interface's lock, taken without waiting
//! (busy: the next pass).

use super::Session;
use crate::cli::RefreshArgs;
use crate::config::{self, RouteTables};
use crate::journal;
use crate::journal::applied::{self, PublicKey, Refresh};
use crate::outcome::Outcome;
use crate::refresh::Refresher;
use crate::state;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wg_exec_steps::Needs;

/// Periods from `--config`, by public key, when one is given.
fn periods_from(iface: &str, file: &Path) -> Result<BTreeMap<PublicKey, Refresh>, Outcome> {
    let (cfg, _) = config::load(iface, file, &RouteTables::system())
        .map_err(|e| Outcome::Invalid(e.0.iter().map(|e| e.to_string()).collect()))?;
    Ok(cfg
        .peers
        .iter()
        .filter_map(|p| applied::refresh_of(&cfg, p).map(|r| (PublicKey::of(&p.public_key), r)))
        .collect())
}

pub fn run(a: &RefreshArgs) -> Outcome {
    let name = a.iface.as_str();
    if let Err(m) = config::check_interface_name(name) {
        return Outcome::Invalid(vec![format!("interface name (command line): {m}")]);
    }
    let overrides = match &a.config {
        Some(f) => match periods_from(name, f) {
            Ok(p) => Some(p),
            Err(o) => return o,
        },
        None => None,
    };
    let dir = journal::state_dir();
    let jpath = journal::path_for(&dir, name);
    let apath = applied::path_for(&dir, name);
    let journal = match journal::peek(&jpath) {
        Ok(Some(j)) if j.is_up() => j,
        Ok(Some(_)) => return Outcome::NotUp("an up did not finish; it is not up".into()),
        Ok(None) => {
            return Outcome::NotUp(format!("it is not up (no journal {})", jpath.display()))
        }
        Err(u) => return Outcome::Refused(u.to_string()),
    };
    let recorded = match applied::load(&apath) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Outcome::Refused(format!(
                "there is no record of what up applied ({})",
                apath.display()
            ))
        }
        Err(e) => return Outcome::Refused(e),
    };
    let link_ns = recorded.interface_namespace.clone();
    let sock_ns = recorded.socket_namespace.clone();
    // It reads and updates the device, and resolves where the socket is: nothing else.
    let needs = Needs::namespaces([&link_ns, &sock_ns]);
    let session = match Session::open_unlocked(name) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let (mut kernel, _) = match session.kernel_for(&needs) {
        Ok(k) => k,
        Err(o) => return o,
    };
    // The backend up recorded, and the daemon that may serve its socket (as status and reload).
    journal::recovery::expect_userspace(&journal, &mut kernel);
    let mut r = Refresher::new(name, link_ns, sock_ns, overrides, dir.clone());
    r.follow(&recorded);
    let mut applied_at = state::version(&apath);
    log::info!(
        "{name}: refreshing {} peer endpoint{} known by name",
        r.len(),
        if r.len() == 1 { "" } else { "s" }
    );
    let stop = session.signalled.clone();
    loop {
        if stop.load(Ordering::SeqCst) {
            log::info!("{name}: refresh stopped by a signal");
            return Outcome::Done;
        }
        match journal::peek(&jpath) {
            Ok(Some(j)) if j.is_up() => {}
            // A journal it cannot read is not "down": fail, and let the unit restart it.
            Err(u) => return Outcome::Refused(format!("{u}; refresh stops")),
            _ => {
                log::info!("{name} is down: refresh ends");
                return Outcome::Done;
            }
        }
        // Peers added or removed by a reload.
        let now_at = state::version(&apath);
        if now_at != applied_at {
            applied_at = now_at;
            if let Ok(Some(rec)) = applied::load(&apath) {
                r.follow(&rec);
            }
        }
        let now = Instant::now();
        let due = r.due(now, a.once);
        if due.is_empty() {
            if a.once {
                return Outcome::Done;
            }
            sleep(r.next_due(now).min(Duration::from_secs(1)), &stop);
            continue;
        }
        r.pass(&due, &mut kernel, &stop);
        if a.once {
            return Outcome::Done;
        }
    }
}

fn sleep(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
    }
}
