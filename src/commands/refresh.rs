//! `wg-exec refresh IFACE`: follows DNS for peers whose endpoint is a host name, without
//! fighting roaming and without ever removing a peer. Peers, their configured endpoints and
//! their periods come from what up (or the last reload) applied, re-read when it changes; the
//! loop ends when the interface is taken down.
//!
//! Each due peer's name is resolved where the UDP socket is (the socket namespace, with its
//! /etc/netns files). An endpoint is pushed, as an update of that peer and nothing else, only
//! when it helps: the answer changed since the last one and the live endpoint is not among the
//! new addresses (a DNS change: followed at once), or the handshake is stale (older than 135 s,
//! or never) and the live endpoint is not among them. A roamed endpoint and round-robin answers
//! are left alone. A failed lookup of any kind keeps the endpoint, is logged once per streak and
//! retried after the restart delay. The device is read only when an answer changed, for a peer
//! without an endpoint, or every 135 s (staleness cannot be seen sooner): unchanged answers
//! cost no request.

use super::Session;
use crate::cli::RefreshArgs;
use crate::config::{self, RouteTables};
use crate::journal::applied::{self, Applied, Refresh};
use crate::journal::{self, ns_of};
use crate::lock;
use crate::outcome::Outcome;
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
    /// The last answer, None before the first.
    previous: Option<Vec<SocketAddr>>,
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
            match self.tracked.iter().position(|t| t.key == k) {
                Some(i) => {
                    let mut t = self.tracked.swap_remove(i);
                    if t.endpoint != endpoint {
                        t.previous = None;
                        t.due = Instant::now();
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
                    previous: None,
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
                Resolved::Addrs(mut addrs) => {
                    if t.failing {
                        log::info!("peer {}: {} resolves again", t.name, t.endpoint);
                        t.failing = false;
                    }
                    addrs.sort();
                    if t.previous.as_ref().is_some_and(|p| *p != addrs) {
                        changed = true;
                    }
                    resolved.push((*i, addrs));
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
        let mut pushes: Vec<(usize, PeerUpdate, Option<SocketAddr>)> = Vec::new();
        for (i, addrs) in &resolved {
            let t = &self.tracked[*i];
            let key = t.key.to_base64();
            let dns_changed = t.previous.as_ref().is_some_and(|p| p != addrs);
            if read {
                if let Some(s) = self.seen.get(&key) {
                    let live = s.peer.endpoint;
                    let among = live.is_some_and(|e| addrs.contains(&e));
                    let age = s.peer.handshake_age.map(|a| a + s.at.elapsed().as_secs());
                    let stale = age.is_none_or(|a| a > STALE);
                    if !among && (dns_changed || stale) {
                        let pick = prefer(addrs, live);
                        pushes.push((*i, update(&s.peer, pick), live));
                    }
                }
            }
        }
        for (i, addrs) in resolved {
            let t = &mut self.tracked[i];
            t.previous = Some(addrs);
            t.due = Instant::now()
                + match t.refresh.period {
                    0 => retry(&t.refresh),
                    p => Duration::from_secs(p),
                };
        }
        let pushed = pushes.len();
        if !pushes.is_empty() {
            // The lock only for the moment of the write; busy: next time (never wait on up,
            // down or reload).
            let never = AtomicBool::new(false);
            match lock::acquire(&self.dir, &self.name, Duration::ZERO, &never) {
                Err(e) => {
                    log::info!(
                        "{}: {e}; the endpoints are pushed on the next pass",
                        self.name
                    );
                    for (i, _, _) in &pushes {
                        self.tracked[*i].previous = None;
                        self.tracked[*i].due = Instant::now() + Duration::from_secs(1);
                    }
                }
                Ok(_lock) => {
                    let updates: Vec<PeerUpdate> =
                        pushes.iter().map(|(_, u, _)| u.clone()).collect();
                    match kernel.wg_update_peers(&self.link_ns, &self.name, &updates) {
                        Ok(()) => {
                            for (i, u, old) in &pushes {
                                let t = &self.tracked[*i];
                                log::info!(
                                    "peer {}: endpoint {} -> {} ({})",
                                    t.name,
                                    old.map(|e| e.to_string()).unwrap_or_else(|| "none".into()),
                                    u.peer.endpoint.map(|e| e.to_string()).unwrap_or_default(),
                                    t.endpoint
                                );
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
                            for (i, _, _) in &pushes {
                                self.tracked[*i].previous = None;
                                self.tracked[*i].due = Instant::now() + Duration::from_secs(1);
                            }
                        }
                    }
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
}

/// The delay after a failure: the restart delay, else the period, else a default.
fn retry(r: &Refresh) -> Duration {
    match (r.restart, r.period) {
        (0, 0) => UNRESOLVED_RETRY,
        (0, p) => Duration::from_secs(p),
        (s, _) => Duration::from_secs(s),
    }
}

/// The address to use: one of the same family as the live endpoint when there is one, else the
/// first.
fn prefer(addrs: &[SocketAddr], live: Option<SocketAddr>) -> SocketAddr {
    live.and_then(|l| addrs.iter().find(|a| a.is_ipv4() == l.is_ipv4()).copied())
        .unwrap_or(addrs[0])
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

    #[test]
    fn the_same_family_is_preferred() {
        let v4: SocketAddr = "203.0.113.5:51820".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::5]:51820".parse().unwrap();
        assert_eq!(
            prefer(&[v6, v4], Some("203.0.113.9:51820".parse().unwrap())),
            v4
        );
        assert_eq!(prefer(&[v6, v4], None), v6);
    }
}
