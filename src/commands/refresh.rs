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
use crate::journal::applied::{self, Applied, Refresh};
use crate::journal::{self, ns_of};
use crate::lock;
use crate::outcome::Outcome;
use crate::refresh::{self, Why};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use wg_exec_steps::step::Needs;
use wg_exec_steps::{
    AllowedIpsChange, Endpoint, Kernel, Key, LivePeer, Netns, PeerSettings, PeerUpdate, Resolve,
    Resolved,
};

/// A handshake older than this is stale (REKEY_AFTER_TIME + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT,
/// the rule of wireguard-tools' reresolve-dns).
const STALE: u64 = 135;
/// How often a name that did not resolve at up is tried when its period is 0 and it has no
/// restart delay of its own.
const UNRESOLVED_RETRY: Duration = Duration::from_secs(10);

/// A peer refresh follows.
struct Tracked {
    name: String,
    key: Key,
    endpoint: Endpoint,
    refresh: Refresh,
    due: Instant,
    /// What the name resolved to (the record's baseline, then what this refresh pushed or
    /// adopted); None before it ever resolved.
    baseline: Option<SocketAddr>,
    /// The baseline changed and is not in the record yet (the lock was busy).
    unsaved: bool,
    /// In a failure streak (logged once).
    failing: bool,
}

/// What the device said about a peer at the last read.
#[derive(Clone)]
struct Seen {
    peer: LivePeer,
    at: Instant,
}

fn endpoint_of(s: &str) -> Option<Endpoint> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some(Endpoint {
        host: host.to_string(),
        port: port.parse().ok()?,
    })
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Periods from `--config`, by public key, when one is given.
fn periods_from(iface: &str, file: &Path) -> Result<BTreeMap<String, Refresh>, Outcome> {
    let (cfg, _) = config::load(iface, file, &RouteTables::system())
        .map_err(|e| Outcome::Invalid(e.0.iter().map(|e| e.to_string()).collect()))?;
    Ok(cfg
        .peers
        .iter()
        .filter_map(|p| applied::refresh_of(&cfg, p).map(|r| (p.public_key.to_base64(), r)))
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
    match journal::peek(&jpath) {
        Ok(Some(j)) if j.is_up() => {}
        Ok(Some(_)) => return Outcome::NotUp("an up did not finish; it is not up".into()),
        Ok(None) => {
            return Outcome::NotUp(format!("it is not up (no journal {})", jpath.display()))
        }
        Err(u) => return Outcome::Refused(u.to_string()),
    }
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
    let link_ns = ns_of(&recorded.interface_namespace);
    let sock_ns = ns_of(&recorded.socket_namespace);
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
    let mut r = Refresher {
        name: name.to_string(),
        link_ns,
        sock_ns,
        tracked: Vec::new(),
        seen: BTreeMap::new(),
        last_read: None,
        overrides,
        dir: dir.clone(),
    };
    r.follow(&recorded);
    let mut applied_at = modified(&apath);
    log::info!(
        "{name}: refreshing {} peer endpoint{} known by name",
        r.tracked.len(),
        if r.tracked.len() == 1 { "" } else { "s" }
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
        let now_at = modified(&apath);
        if now_at != applied_at {
            applied_at = now_at;
            if let Ok(Some(rec)) = applied::load(&apath) {
                r.follow(&rec);
            }
        }
        let now = Instant::now();
        let due: Vec<usize> = (0..r.tracked.len())
            .filter(|i| a.once || r.tracked[*i].due <= now)
            .filter(|i| r.wanted(*i))
            .collect();
        if due.is_empty() {
            if a.once {
                return Outcome::Done;
            }
            let next = r
                .tracked
                .iter()
                .map(|t| t.due)
                .min()
                .map(|d| d.saturating_duration_since(now))
                .unwrap_or(Duration::from_secs(1));
            sleep(next.min(Duration::from_secs(1)), &stop);
            continue;
        }
        if let Err(o) = r.pass(&due, &mut kernel, &stop) {
            return o;
        }
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

struct Refresher {
    name: String,
    link_ns: Netns,
    sock_ns: Netns,
    tracked: Vec<Tracked>,
    seen: BTreeMap<String, Seen>,
    last_read: Option<Instant>,
    overrides: Option<BTreeMap<String, Refresh>>,
    dir: std::path::PathBuf,
}

impl Refresher {
    /// Follows the record: peers known by name, with their endpoints and periods.
    fn follow(&mut self, rec: &Applied) {
        let mut next = Vec::new();
        for (key, ep) in &rec.endpoints {
            let Some(refresh) = self
                .overrides
                .as_ref()
                .and_then(|o| o.get(key).copied())
                .or_else(|| rec.refresh.get(key).copied())
            else {
                continue;
            };
            let (Some(endpoint), Ok(k)) = (endpoint_of(ep), Key::from_base64(key, false)) else {
                continue;
            };
            let name = rec.names.get(key).cloned().unwrap_or_else(|| key.clone());
            let recorded = rec.resolved_endpoints.get(key).copied();
            match self.tracked.iter().position(|t| t.key == k) {
                Some(i) => {
                    let mut t = self.tracked.swap_remove(i);
                    if t.endpoint != endpoint {
                        // Another name (a reload): its baseline is the record's.
                        t.baseline = recorded;
                        t.unsaved = false;
                        t.due = Instant::now();
                    } else if !t.unsaved {
                        t.baseline = recorded.or(t.baseline);
                    }
                    t.endpoint = endpoint;
                    t.refresh = refresh;
                    t.name = name;
                    next.push(t);
                }
                None => next.push(Tracked {
                    name,
                    key: k,
                    endpoint,
                    refresh,
                    due: Instant::now(),
                    baseline: recorded,
                    unsaved: false,
                    failing: false,
                }),
            }
        }
        self.tracked = next;
    }

    /// Whether a peer is refreshed at all: a period, or no endpoint yet (up could not resolve
    /// it), or not read yet.
    fn wanted(&self, i: usize) -> bool {
        let t = &self.tracked[i];
        t.refresh.period > 0
            || match self.seen.get(&t.key.to_base64()) {
                None => true,
                Some(s) => s.peer.endpoint.is_none(),
            }
    }

    fn read(&mut self, kernel: &mut dyn Kernel) -> Result<(), String> {
        let dev = kernel
            .wg_get(&self.link_ns, &self.name)
            .map_err(|e| format!("cannot read {} in {}: {e}", self.name, self.link_ns))?;
        let at = Instant::now();
        self.seen = dev
            .peers
            .into_iter()
            .map(|p| (p.public_key.to_base64(), Seen { peer: p, at }))
            .collect();
        self.last_read = Some(at);
        Ok(())
    }

    fn pass(
        &mut self,
        due: &[usize],
        kernel: &mut dyn Kernel,
        stop: &AtomicBool,
    ) -> Result<(), Outcome> {
        let started = Instant::now();
        let eps: Vec<Endpoint> = due
            .iter()
            .map(|i| self.tracked[*i].endpoint.clone())
            .collect();
        let answers = kernel.resolve_endpoints(&self.sock_ns, &eps, Resolve::Once);
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut changed = false;
        let mut resolved: Vec<(usize, Vec<SocketAddr>)> = Vec::new();
        for (i, answer) in due.iter().zip(answers) {
            let t = &mut self.tracked[*i];
            match answer {
                Resolved::Addrs(mut addrs) if !addrs.is_empty() => {
                    if t.failing {
                        log::info!("peer {}: {} resolves again", t.name, t.endpoint);
                        t.failing = false;
                    }
                    addrs.sort();
                    // Compared with the baseline: a change made before this refresh started
                    // counts as one too.
                    if t.baseline.is_none_or(|b| !addrs.contains(&b)) {
                        changed = true;
                    }
                    resolved.push((*i, addrs));
                }
                Resolved::Addrs(_) => {
                    t.due = Instant::now() + retry(&t.refresh);
                }
                Resolved::Later(why)
                | Resolved::Failed(wg_exec_steps::KernelError { message: why, .. }) => {
                    if !t.failing {
                        log::warn!(
                            "peer {}: {} does not resolve ({why}); keeping its endpoint, retrying every {} s",
                            t.name,
                            t.endpoint,
                            retry(&t.refresh).as_secs()
                        );
                        t.failing = true;
                    }
                    t.due = Instant::now() + retry(&t.refresh);
                }
            }
        }
        let resolved_count = resolved.len();
        // The device is read when it can tell something new.
        let unknown = resolved
            .iter()
            .any(|(i, _)| !self.seen.contains_key(&self.tracked[*i].key.to_base64()));
        let stale_due = self
            .last_read
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(STALE));
        let without_endpoint = resolved.iter().any(|(i, _)| {
            self.seen
                .get(&self.tracked[*i].key.to_base64())
                .is_some_and(|s| s.peer.endpoint.is_none())
        });
        let read = !resolved.is_empty() && (changed || unknown || stale_due || without_endpoint);
        if read {
            if let Err(e) = self.read(kernel) {
                log::warn!("{e}");
                return Ok(());
            }
        }
        let mut pushes: Vec<(usize, PeerUpdate, Option<SocketAddr>, Why)> = Vec::new();
        let mut adopted = false;
        if read {
            for (i, addrs) in &resolved {
                let t = &mut self.tracked[*i];
                let Some(s) = self.seen.get(&t.key.to_base64()) else {
                    continue;
                };
                let live = s.peer.endpoint;
                let age = s.peer.handshake_age.map(|a| a + s.at.elapsed().as_secs());
                let stale = age.is_none_or(|a| a > STALE);
                let d = refresh::decide(t.baseline, addrs, live, stale, t.refresh.period > 0);
                match d.push {
                    Some(pick) => pushes.push((*i, update(&s.peer, pick), live, d.why)),
                    None if d.baseline != t.baseline => {
                        t.baseline = d.baseline;
                        t.unsaved = true;
                        adopted = true;
                    }
                    None => {}
                }
            }
        }
        for (i, _) in resolved {
            let t = &mut self.tracked[i];
            t.due = Instant::now()
                + match t.refresh.period {
                    0 => retry(&t.refresh),
                    p => Duration::from_secs(p),
                };
        }
        let pushed = pushes.len();
        if !pushes.is_empty() || adopted || self.tracked.iter().any(|t| t.unsaved) {
            // The lock only for the moment of the write; busy: next time (never wait on up,
            // down or reload).
            let never = AtomicBool::new(false);
            match lock::acquire(&self.dir, &self.name, Duration::ZERO, &never) {
                Err(e) => {
                    if !pushes.is_empty() {
                        log::info!(
                            "{}: {e}; the endpoints are pushed on the next pass",
                            self.name
                        );
                    }
                    for (i, _, _, _) in &pushes {
                        self.tracked[*i].due = Instant::now() + Duration::from_secs(1);
                    }
                }
                Ok(_lock) => {
                    if !pushes.is_empty() {
                        self.push(&pushes, kernel);
                    }
                    self.save();
                }
            }
        }
        log::debug!(
            "{}: refresh pass: {} looked up, {} resolved, answers {}, device {}, {pushed} endpoint{} pushed, {:.1?}",
            self.name,
            due.len(),
            resolved_count,
            if changed { "changed" } else { "unchanged" },
            if read { "read" } else { "not read" },
            if pushed == 1 { "" } else { "s" },
            started.elapsed()
        );
        Ok(())
    }

    /// Sends the new endpoints (the caller holds the lock); what went through becomes the
    /// baseline, what did not is tried again on the next pass.
    fn push(
        &mut self,
        pushes: &[(usize, PeerUpdate, Option<SocketAddr>, Why)],
        kernel: &mut dyn Kernel,
    ) {
        let updates: Vec<PeerUpdate> = pushes.iter().map(|(_, u, _, _)| u.clone()).collect();
        match kernel.wg_update_peers(&self.link_ns, &self.name, &updates) {
            Ok(()) => {
                for (i, u, old, why) in pushes {
                    let t = &mut self.tracked[*i];
                    log::info!(
                        "peer {}: endpoint {} -> {} ({}): {}",
                        t.name,
                        old.map(|e| e.to_string()).unwrap_or_else(|| "none".into()),
                        u.peer.endpoint.map(|e| e.to_string()).unwrap_or_default(),
                        t.endpoint,
                        reason(*why)
                    );
                    t.baseline = u.peer.endpoint;
                    t.unsaved = true;
                    if let Some(s) = self.seen.get_mut(&t.key.to_base64()) {
                        s.peer.endpoint = u.peer.endpoint;
                    }
                }
            }
            Err(e) => {
                log::warn!(
                    "{}: cannot set endpoints: {e}; trying again on the next pass",
                    self.name
                );
                for (i, _, _, _) in pushes {
                    self.tracked[*i].due = Instant::now() + Duration::from_secs(1);
                }
            }
        }
    }

    /// Writes the baselines the record does not have yet into it (the caller holds the lock):
    /// the record as it is on disk, with the new baseline of each peer whose endpoint is still
    /// the name this refresh resolved; atomically (temporary file, rename).
    fn save(&mut self) {
        let apath = applied::path_for(&self.dir, &self.name);
        let mut rec = match applied::load(&apath) {
            Ok(Some(r)) => r,
            // Taken down meanwhile: nothing to keep.
            Ok(None) => return,
            Err(e) => {
                log::warn!("{}: {e}; the baselines are written later", self.name);
                return;
            }
        };
        let mut differs = false;
        for t in self.tracked.iter().filter(|t| t.unsaved) {
            let key = t.key.to_base64();
            let same_name = rec
                .endpoints
                .get(&key)
                .and_then(|e| endpoint_of(e))
                .as_ref()
                == Some(&t.endpoint);
            if let (true, Some(b)) = (same_name, t.baseline) {
                if rec.resolved_endpoints.get(&key) != Some(&b) {
                    rec.resolved_endpoints.insert(key, b);
                    differs = true;
                }
            }
        }
        if differs {
            if let Err(e) = applied::save(&apath, &rec) {
                log::warn!(
                    "{}: cannot write {}: {e}; trying again on the next pass",
                    self.name,
                    apath.display()
                );
                return;
            }
        }
        for t in &mut self.tracked {
            t.unsaved = false;
        }
    }
}

/// Why an endpoint was pushed, for the log.
fn reason(why: Why) -> &'static str {
    match why {
        Why::NoEndpoint => "the peer had no endpoint",
        Why::DnsChanged => "the name resolves elsewhere now",
        Why::Stale => "the handshake is stale",
        Why::Current | Why::Roamed | Why::NotFollowed | Why::Adopted => "",
    }
}

/// The delay after a failure: the restart delay, else the period, else a default.
fn retry(r: &Refresh) -> Duration {
    match (r.restart, r.period) {
        (0, 0) => UNRESOLVED_RETRY,
        (0, p) => Duration::from_secs(p),
        (s, _) => Duration::from_secs(s),
    }
}

/// An update of the endpoint alone (the rest as it is, for an implementation that re-adds).
fn update(p: &LivePeer, endpoint: SocketAddr) -> PeerUpdate {
    PeerUpdate {
        peer: PeerSettings {
            public_key: p.public_key.clone(),
            preshared_key: p.preshared_key.clone(),
            endpoint: Some(endpoint),
            persistent_keepalive: (p.persistent_keepalive > 0).then_some(p.persistent_keepalive),
            allowed_ips: p.allowed_ips.clone(),
        },
        preshared_key: false,
        endpoint: true,
        persistent_keepalive: false,
        allowed_ips: AllowedIpsChange::Unchanged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_read_back_from_the_record() {
        assert_eq!(
            endpoint_of("demo.wireguard.io:12913"),
            Some(Endpoint {
                host: "demo.wireguard.io".into(),
                port: 12913
            })
        );
        assert_eq!(
            endpoint_of("[2001:db8::1]:51820").unwrap().host,
            "2001:db8::1"
        );
    }
}
