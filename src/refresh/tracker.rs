//! The tracker of `wg-exec refresh`: the peers known by name (from the record of what was
//! applied), their due times and baselines, and one pass over the due ones: resolve where the
//! socket is, read the device when it can tell something new, decide per peer
//! (`super::decide`), push what changed and write the new baselines into the record under the
//! interface's lock. It talks to `dyn Kernel` only, so the fake kernel tests it.

use super::{decide, Why};
use crate::journal::applied::{self, Applied, PublicKey, Refresh};
use crate::lock;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
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

/// The peers a refresh follows and what it knows of them.
pub struct Refresher {
    name: String,
    link_ns: Netns,
    sock_ns: Netns,
    tracked: Vec<Tracked>,
    seen: BTreeMap<String, Seen>,
    last_read: Option<Instant>,
    overrides: Option<BTreeMap<PublicKey, Refresh>>,
    dir: std::path::PathBuf,
}

impl Refresher {
    /// A refresher of interface `name` (its link in `link_ns`, its socket in `sock_ns`; its
    /// state files in `dir`), with the periods of `--config` when given.
    pub fn new(
        name: &str,
        link_ns: Netns,
        sock_ns: Netns,
        overrides: Option<BTreeMap<PublicKey, Refresh>>,
        dir: PathBuf,
    ) -> Refresher {
        Refresher {
            name: name.to_string(),
            link_ns,
            sock_ns,
            tracked: Vec::new(),
            seen: BTreeMap::new(),
            last_read: None,
            overrides,
            dir,
        }
    }

    /// How many peers it follows.
    pub fn len(&self) -> usize {
        self.tracked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracked.is_empty()
    }

    /// The peers to look up now (all of them for `--once`), by index.
    pub fn due(&self, now: Instant, once: bool) -> Vec<usize> {
        (0..self.tracked.len())
            .filter(|i| once || self.tracked[*i].due <= now)
            .filter(|i| self.wanted(*i))
            .collect()
    }

    /// How long until the next peer is due (a second when none is).
    pub fn next_due(&self, now: Instant) -> Duration {
        self.tracked
            .iter()
            .map(|t| t.due)
            .min()
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(1))
    }

    /// Follows the record: peers known by name, with their endpoints and periods.
    pub fn follow(&mut self, rec: &Applied) {
        let mut next = Vec::new();
        for (key, endpoint) in &rec.endpoints {
            let Some(refresh) = self
                .overrides
                .as_ref()
                .and_then(|o| o.get(key).copied())
                .or_else(|| rec.refresh.get(key).copied())
            else {
                continue;
            };
            let endpoint = endpoint.clone();
            let k = key.key();
            let name = rec.name(key).unwrap_or_else(|| key.to_string());
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

    /// One pass over the `due` peers; `stop` (a signal) ends it before anything is pushed.
    pub fn pass(&mut self, due: &[usize], kernel: &mut dyn Kernel, stop: &AtomicBool) {
        let started = Instant::now();
        let eps: Vec<Endpoint> = due
            .iter()
            .map(|i| self.tracked[*i].endpoint.clone())
            .collect();
        let answers = kernel.resolve_endpoints(&self.sock_ns, &eps, Resolve::Once);
        if stop.load(Ordering::SeqCst) {
            return;
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
                return;
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
                let d = decide(t.baseline, addrs, live, stale, t.refresh.period > 0);
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
        let mut pushed = 0;
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
                    // A reload may have changed an endpoint since the record was followed
                    // (DNS takes seconds): push only where the record still names the name.
                    let pushes = self.still_recorded(pushes);
                    let pushes = self.as_now(pushes, kernel);
                    pushed = pushes.len();
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

    /// The pushes rebuilt from the device as it is now (the caller holds the lock): an
    /// implementation that re-adds a peer to change its endpoint (boringtun) is sent the peer's
    /// other settings as they are, not as they were read before the lock, which a reload may
    /// have changed since. A peer gone meanwhile is not pushed; a failed read defers them all.
    fn as_now(
        &mut self,
        pushes: Vec<(usize, PeerUpdate, Option<SocketAddr>, Why)>,
        kernel: &mut dyn Kernel,
    ) -> Vec<(usize, PeerUpdate, Option<SocketAddr>, Why)> {
        if pushes.is_empty() {
            return pushes;
        }
        if let Err(e) = self.read(kernel) {
            log::warn!("{e}; the endpoints are pushed on the next pass");
            for (i, _, _, _) in &pushes {
                self.tracked[*i].due = Instant::now() + Duration::from_secs(1);
            }
            return Vec::new();
        }
        pushes
            .into_iter()
            .filter_map(|(i, u, old, why)| {
                let s = self.seen.get(&self.tracked[i].key.to_base64())?;
                Some((i, update(&s.peer, u.peer.endpoint?), old, why))
            })
            .collect()
    }

    /// The pushes whose peer's endpoint is, in the record as it is on disk now (the caller
    /// holds the lock), still the name this refresh resolved; none when the record is gone or
    /// unreadable (the next pass follows it again).
    fn still_recorded(
        &self,
        pushes: Vec<(usize, PeerUpdate, Option<SocketAddr>, Why)>,
    ) -> Vec<(usize, PeerUpdate, Option<SocketAddr>, Why)> {
        if pushes.is_empty() {
            return pushes;
        }
        let rec = match applied::load(&applied::path_for(&self.dir, &self.name)) {
            Ok(Some(r)) => r,
            Ok(None) => return Vec::new(),
            Err(e) => {
                log::warn!(
                    "{}: {e}; the endpoints are pushed on a later pass",
                    self.name
                );
                return Vec::new();
            }
        };
        pushes
            .into_iter()
            .filter(|(i, _, _, _)| {
                let t = &self.tracked[*i];
                let named = rec.endpoints.get(&PublicKey::of(&t.key)) == Some(&t.endpoint);
                if !named {
                    log::info!(
                        "peer {}: its endpoint is no longer {} (a reload changed it); not pushed",
                        t.name,
                        t.endpoint
                    );
                }
                named
            })
            .collect()
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
            let key = PublicKey::of(&t.key);
            let same_name = rec.endpoints.get(&key) == Some(&t.endpoint);
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

    mod on_the_fake {
        use super::*;
        use crate::config::{self, RouteTables};
        use std::path::Path;
        use wg_exec_steps::fake::{FakeKernel, FakeLink};

        const B: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

        fn b() -> PublicKey {
            PublicKey::of(&Key::from_base64(B, false).unwrap())
        }

        fn a(s: &str) -> SocketAddr {
            s.parse().unwrap()
        }

        /// wg0 up with peer B known as b.example (period 1), the name resolved to `.2` at up
        /// and the device still there; the record in a state directory of its own.
        struct World {
            dir: tempfile::TempDir,
            kernel: FakeKernel,
            r: Refresher,
        }

        impl World {
            fn new() -> World {
                let text = format!(
                    "Interface(private_key_file: \"/k\", peers: [Peer(public_key: \"{B}\", allowed_ips: [], endpoint: \"b.example:51820\", dynamic_endpoint_refresh_seconds: 1)])"
                );
                let (cfg, _) =
                    config::parse("wg0", Path::new("wg0.ron"), &text, &RouteTables::builtin())
                        .unwrap();
                let mut rec = Applied::of(&cfg);
                rec.resolved_endpoints.insert(b(), a("203.0.113.2:51820"));
                let dir = tempfile::tempdir().unwrap();
                applied::save(&applied::path_for(dir.path(), "wg0"), &rec).unwrap();
                let mut kernel = FakeKernel::new();
                let mut link = FakeLink::default();
                let key = Key::from_base64(B, false).unwrap();
                link.peers.insert(
                    key.clone(),
                    PeerSettings {
                        public_key: key,
                        preshared_key: None,
                        endpoint: Some(a("203.0.113.2:51820")),
                        persistent_keepalive: None,
                        allowed_ips: Vec::new(),
                    },
                );
                kernel
                    .state
                    .links
                    .insert((Netns::Current, "wg0".into()), link);
                kernel
                    .hosts
                    .insert("b.example".into(), "203.0.113.2".parse().unwrap());
                // A fresh handshake: only a DNS change moves the endpoint.
                kernel.handshake_age = Some(5);
                let mut r = Refresher::new(
                    "wg0",
                    Netns::Current,
                    Netns::Current,
                    None,
                    dir.path().to_path_buf(),
                );
                r.follow(&rec);
                World { dir, kernel, r }
            }

            /// A `--once` pass; the number of endpoint updates it sent.
            fn once(&mut self) -> usize {
                let before = self.pushes();
                let due = self.r.due(Instant::now(), true);
                self.r.pass(&due, &mut self.kernel, &AtomicBool::new(false));
                self.pushes() - before
            }

            fn pushes(&self) -> usize {
                self.kernel
                    .calls
                    .iter()
                    .filter(|c| c.starts_with("wg_update_peers"))
                    .count()
            }

            fn name_moves(&mut self, to: &str) {
                self.kernel
                    .hosts
                    .insert("b.example".into(), to.parse().unwrap());
            }

            fn live(&self) -> Option<SocketAddr> {
                let key = Key::from_base64(B, false).unwrap();
                self.kernel.state.links[&(Netns::Current, "wg0".to_string())].peers[&key].endpoint
            }

            fn roam(&mut self, to: &str) {
                let key = Key::from_base64(B, false).unwrap();
                self.kernel
                    .state
                    .links
                    .get_mut(&(Netns::Current, "wg0".to_string()))
                    .unwrap()
                    .peers
                    .get_mut(&key)
                    .unwrap()
                    .endpoint = Some(a(to));
            }

            fn baseline_on_disk(&self) -> Option<SocketAddr> {
                applied::load(&applied::path_for(self.dir.path(), "wg0"))
                    .unwrap()
                    .unwrap()
                    .resolved_endpoints
                    .get(&b())
                    .copied()
            }

            /// A refresh started anew: the record as it is on disk.
            fn restart(&mut self) {
                let rec = applied::load(&applied::path_for(self.dir.path(), "wg0"))
                    .unwrap()
                    .unwrap();
                self.r = Refresher::new(
                    "wg0",
                    Netns::Current,
                    Netns::Current,
                    None,
                    self.dir.path().to_path_buf(),
                );
                self.r.follow(&rec);
            }
        }

        #[test]
        fn a_change_before_the_first_pass_is_pushed_and_becomes_the_baseline() {
            let mut w = World::new();
            assert_eq!(w.once(), 0, "nothing changed");
            w.name_moves("203.0.113.3");
            w.restart();
            assert_eq!(w.once(), 1);
            assert_eq!(w.live(), Some(a("203.0.113.3:51820")));
            assert_eq!(w.baseline_on_disk(), Some(a("203.0.113.3:51820")));
            w.restart();
            assert_eq!(w.once(), 0, "the new address is the baseline now");
        }

        #[test]
        fn a_roam_is_left_alone_also_after_a_restart_until_the_handshake_is_stale() {
            let mut w = World::new();
            w.name_moves("203.0.113.3");
            assert_eq!(w.once(), 1);
            w.roam("203.0.113.9:51820");
            assert_eq!(w.once(), 0);
            w.restart();
            assert_eq!(w.once(), 0);
            assert_eq!(w.live(), Some(a("203.0.113.9:51820")));
            // Stale (seen by a fresh refresh: a running one reads the device every 135 s).
            w.kernel.handshake_age = Some(200);
            assert_eq!(w.once(), 0, "the device is not read again so soon");
            w.restart();
            assert_eq!(w.once(), 1);
            assert_eq!(w.live(), Some(a("203.0.113.3:51820")));
        }

        #[test]
        fn a_busy_lock_defers_the_push_and_the_baseline() {
            let mut w = World::new();
            w.name_moves("203.0.113.3");
            let held = lock::acquire(w.dir.path(), "wg0", Duration::ZERO, &AtomicBool::new(false))
                .unwrap();
            assert_eq!(w.once(), 0);
            assert_eq!(w.live(), Some(a("203.0.113.2:51820")));
            assert_eq!(w.baseline_on_disk(), Some(a("203.0.113.2:51820")));
            drop(held);
            assert_eq!(w.once(), 1);
            assert_eq!(w.baseline_on_disk(), Some(a("203.0.113.3:51820")));
        }

        #[test]
        fn a_push_carries_the_peers_settings_as_they_are_under_the_lock() {
            let mut w = World::new();
            w.name_moves("203.0.113.3");
            // What the pass read before it took the lock.
            w.r.read(&mut w.kernel).unwrap();
            let key = Key::from_base64(B, false).unwrap();
            let read = w.r.seen[&key.to_base64()].peer.clone();
            let pushes = vec![(
                0,
                update(&read, a("203.0.113.3:51820")),
                None,
                Why::DnsChanged,
            )];
            // A reload then gives B an allowed IP and a keepalive.
            let net: ipnet::IpNet = "198.51.100.0/24".parse().unwrap();
            {
                let link = w
                    .kernel
                    .state
                    .links
                    .get_mut(&(Netns::Current, "wg0".to_string()))
                    .unwrap();
                let p = link.peers.get_mut(&key).unwrap();
                p.allowed_ips = vec![net];
                p.persistent_keepalive = Some(25);
            }
            let now = w.r.as_now(pushes, &mut w.kernel);
            assert_eq!(now.len(), 1);
            let peer = &now[0].1.peer;
            assert_eq!(
                peer.allowed_ips,
                vec![net],
                "the reload's allowed IPs are kept"
            );
            assert_eq!(peer.persistent_keepalive, Some(25));
            assert_eq!(peer.endpoint, Some(a("203.0.113.3:51820")));
            // A peer a reload removed is not pushed back.
            w.kernel
                .state
                .links
                .get_mut(&(Netns::Current, "wg0".to_string()))
                .unwrap()
                .peers
                .clear();
            let pushes = vec![(
                0,
                update(&read, a("203.0.113.3:51820")),
                None,
                Why::DnsChanged,
            )];
            assert!(w.r.as_now(pushes, &mut w.kernel).is_empty());
        }

        #[test]
        fn a_name_a_reload_replaced_is_neither_pushed_nor_its_baseline_written() {
            let mut w = World::new();
            w.name_moves("203.0.113.3");
            // A reload gives B another name after this refresh read the record.
            let path = applied::path_for(w.dir.path(), "wg0");
            let mut rec = applied::load(&path).unwrap().unwrap();
            rec.endpoints.insert(
                b(),
                Endpoint {
                    host: "b2.example".into(),
                    port: 51820,
                },
            );
            rec.resolved_endpoints.remove(&b());
            applied::save(&path, &rec).unwrap();
            assert_eq!(
                w.once(),
                0,
                "not pushed: the record no longer names b.example"
            );
            assert_eq!(
                w.live(),
                Some(a("203.0.113.2:51820")),
                "what the reload set stays"
            );
            assert_eq!(w.baseline_on_disk(), None, "not recorded for b2.example");
        }
    }
}
