//! `wg-exec refresh` on the real userspace backend, against a DNS server the tests run
//! themselves: dnsmasq inside host A's namespace, answering from a hosts file the test rewrites
//! (and reloads with SIGHUP), with `/etc/netns/A/resolv.conf` pointing at it. No query can leave
//! the machine: the namespaces have no route out and dnsmasq forwards nothing (--no-resolv).
//!
//! Host A is brought up in the plain shape (`ip netns exec A wg-exec ...`, no namespace option),
//! so that the /etc/netns/A files are those `ip netns exec` binds, as users get them; one test
//! gives `socket_namespace: A` and runs wg-exec from another namespace of its own, so that
//! wg-exec binds them itself (the resolver's forked child). Peer B runs wireguard-go in its own
//! namespace. The long-running `wg-exec refresh` is a child process, stopped with SIGTERM. The
//! observers are `wg show dump`, `ping` and wg-exec's own log (its pass and request lines).
//! Root only; every namespace is the test's own.

mod support;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use support::conf::{Conf, Peer};
use support::*;

const DNSMASQ: &str = "/usr/sbin/dnsmasq";
const B_NAME: &str = "b.wg-exec.test";
const B_ENDPOINT: &str = "b.wg-exec.test:51821";

/// dnsmasq and getent, or (under CI=true) a failure; elsewhere the test says it did not run.
fn dns_tools(test: &str) -> bool {
    let mut missing = Vec::new();
    if !Path::new(DNSMASQ).is_file() {
        missing.push(format!("{DNSMASQ} (Debian package dnsmasq-base)"));
    }
    if which("getent").is_none() {
        missing.push("getent".to_string());
    }
    require(test, &missing, " (CI=true)")
}

fn ready(test: &str) -> bool {
    real_environment(test) && dns_tools(test)
}

/// What `name` resolves to in `ns` (IPv4, the first answer), as a program there sees it.
fn resolves_in(ns: &str, name: &str) -> Option<String> {
    let out = sh(&format!("ip netns exec {ns} getent ahostsv4 {name}"));
    if !out.status.success() {
        return None;
    }
    text(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
}

/// A DNS server in a namespace: dnsmasq answering from `hosts` only, and
/// /etc/netns/NS/resolv.conf pointing at it. Dropped = the server stopped and /etc/netns/NS
/// removed.
struct Dns {
    ns: String,
    etc: PathBuf,
    hosts: PathBuf,
    entries: Vec<(String, String)>,
    server: Option<Child>,
    log: PathBuf,
}

impl Dns {
    /// The resolver configuration only; the server is not started.
    fn new(ns: &Netns, dir: &Path) -> Dns {
        let etc = Path::new("/etc/netns").join(&ns.name);
        // Created first, so that the guard removes it whatever happens next.
        let dns = Dns {
            ns: ns.name.clone(),
            etc: etc.clone(),
            hosts: dir.join("dns-hosts"),
            entries: Vec::new(),
            server: None,
            log: dir.join("dnsmasq.log"),
        };
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        std::fs::write(&dns.hosts, "").unwrap();
        dns
    }

    /// The names the server answers (name, IPv4 address); a running server reloads them
    /// (SIGHUP) and is waited for until it answers them.
    fn set(&mut self, entries: &[(&str, &str)]) {
        self.entries = entries
            .iter()
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect();
        let body: String = self
            .entries
            .iter()
            .map(|(n, a)| format!("{a} {n}\n"))
            .collect();
        std::fs::write(&self.hosts, body).unwrap();
        if let Some(s) = &self.server {
            signal(s.id(), nix::sys::signal::Signal::SIGHUP);
            self.wait_answers();
        }
    }

    fn start(&mut self) {
        assert!(self.server.is_none());
        let server = Command::new("ip")
            .args(["netns", "exec", &self.ns, DNSMASQ])
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--local-ttl=0",
                "--user=root",
                "--log-facility=-",
            ])
            .arg(format!("--addn-hosts={}", self.hosts.display()))
            .arg(format!(
                "--pid-file={}",
                self.hosts.with_extension("pid").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&self.log).unwrap())
            .spawn()
            .unwrap();
        self.server = Some(server);
        self.wait_answers();
    }

    /// Stops the server (the port is closed when this returns).
    fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }

    /// Until a program in the namespace gets every answer the file gives.
    fn wait_answers(&self) {
        for (name, addr) in &self.entries {
            assert!(
                within(Duration::from_secs(5), || resolves_in(&self.ns, name)
                    .as_deref()
                    == Some(addr.as_str())),
                "dnsmasq in {} does not answer {name} with {addr}: {}",
                self.ns,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    /// /etc/netns/NS/hosts: localhost and `entries`, for the files source of the resolver.
    fn etc_hosts(&self, entries: &[(&str, &str)]) {
        let mut body = "127.0.0.1 localhost\n::1 localhost\n".to_string();
        for (n, a) in entries {
            body.push_str(&format!("{a} {n}\n"));
        }
        std::fs::write(self.etc.join("hosts"), body).unwrap();
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

/// A long-running wg-exec (refresh), its log in a file. Dropped while running = SIGKILL.
struct Running {
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Running {
    /// `ip netns exec NS wg-exec ARGS` (ip execs wg-exec: the child is wg-exec itself).
    fn start(ns: &str, args: &str, log: PathBuf) -> Running {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, wg_exec_bin()])
            .args(args.split_whitespace())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Running {
            child,
            log,
            status: None,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The pass lines so far.
    fn passes(&self) -> Vec<String> {
        passes(&self.log())
    }

    /// Until the log says `what`; panics with the log after `bound`.
    fn wait_log(&self, bound: Duration, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut log = String::new();
        let seen = within(bound, || {
            log = self.log();
            cond(&log)
        });
        assert!(seen, "refresh: no {what} within {bound:?}: {log}");
        log
    }

    /// Until `n` passes are logged.
    fn wait_passes(&self, n: usize, bound: Duration) -> String {
        self.wait_log(bound, &format!("{n} passes"), |l| passes(l).len() >= n)
    }

    /// SIGTERM; it must exit 0 within 1 s. Returns the whole log.
    fn terminate(&mut self) -> String {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "refresh ended before SIGTERM: {}",
            self.log()
        );
        signal(self.child.id(), nix::sys::signal::Signal::SIGTERM);
        let sent = Instant::now();
        self.exit_within(Duration::from_secs(1), "after SIGTERM");
        let log = self.log();
        assert!(
            log.contains("refresh stopped by a signal"),
            "refresh did not say it stopped ({:?}): {log}",
            sent.elapsed()
        );
        log
    }

    /// Until the process exits by itself (0) within `bound`. Returns the whole log.
    fn exit_within(&mut self, bound: Duration, what: &str) -> String {
        let mut status = None;
        let exited = within(bound, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let log = self.log();
        assert!(
            exited,
            "wg-exec did not exit within {bound:?} {what}: {log}"
        );
        self.status = status;
        assert!(
            status.unwrap().success(),
            "wg-exec exited with {} {what}: {log}",
            status.unwrap()
        );
        log
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.status.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The debug lines of the refresh passes.
fn passes(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(": refresh pass: "))
        .map(str::to_string)
        .collect()
}

/// The numbers of the final `requests: netlink N (M datagrams), uapi writes W, uapi reads R`.
fn requests(log: &str) -> [u64; 4] {
    let line = log
        .lines()
        .rfind(|l| l.contains("requests: netlink "))
        .unwrap_or_else(|| panic!("no requests line: {log}"));
    let rest = &line[line.find("requests: netlink ").unwrap()..];
    let numbers: Vec<u64> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 4, "{line}");
    [numbers[0], numbers[1], numbers[2], numbers[3]]
}

/// Host A (wg-exec, plain shape, tunnel 192.0.2.1) and peer B (wireguard-go in its own
/// namespace, 192.0.2.2, listening on 51821), A's DNS server, and the guards. Fields drop in
/// order: the DNS server and /etc/netns/A first, the namespaces last.
struct World {
    dns: Dns,
    _guards: (SocketGuard, SocketGuard),
    pair: Pair,
    keys: Keys,
    ia: String,
    ib: String,
    ka: PathBuf,
    pa: String,
    pb: String,
}

impl World {
    fn new() -> World {
        let pair = Pair::new();
        let keys = Keys::new();
        let (ia, ib) = (iface("a"), iface("b"));
        let (ka, pa) = keys.private("a");
        let (_, pb) = keys.private("b");
        World {
            dns: Dns::new(&pair.a, keys.dir.path()),
            _guards: (SocketGuard(ia.clone()), SocketGuard(ib.clone())),
            pair,
            keys,
            ia,
            ib,
            ka,
            pa,
            pb,
        }
    }

    /// A world whose DNS server answers B's name with 203.0.113.2, B up (`b_fields` for its
    /// peer A, see `b_up`), and A's configuration a.ron with B known by name (`a_fields`).
    fn named(b_fields: &str, a_fields: &str) -> (World, PathBuf) {
        let mut w = World::new();
        w.dns.set(&[(B_NAME, "203.0.113.2")]);
        w.dns.start();
        w.b_up(b_fields);
        let ca = w.a_conf("a.ron", vec![w.peer_b(a_fields)]);
        (w, ca)
    }

    /// `up` of A with configuration `ca`, as root; its log.
    fn a_up(&self, ca: &Path) -> String {
        ok(self.a(&format!("up {} --config {}", self.ia, ca.display())))
    }

    fn a_ns(&self) -> &str {
        &self.pair.a.name
    }

    /// B up; `fields` for its peer A (an endpoint, a keepalive), or none: it learns A's.
    fn b_up(&self, fields: &str) {
        let kb = self.keys.dir.path().join("b.key");
        let cb = self.keys.write(
            "b.ron",
            &Conf::new(&["192.0.2.2/24"], &kb)
                .with("listen_port: 51821, backend: Userspace")
                .peer(Peer::new(&self.pa, &["192.0.2.1/32"]).with(fields))
                .render(),
        );
        ok(wg_exec(
            &format!("ip netns exec {}", self.pair.b.name),
            &format!("up {} --config {}", self.ib, cb.display()),
        ));
    }

    /// B as A's peer, known by name.
    fn peer_b(&self, fields: &str) -> Peer {
        Peer::new(&self.pb, &["192.0.2.2/32"])
            .with(format!("name: \"b\", endpoint: \"{B_ENDPOINT}\""))
            .with(fields)
    }

    /// A's configuration file `file` (plain shape, the backend left to Auto).
    fn a_conf(&self, file: &str, peers: Vec<Peer>) -> PathBuf {
        self.keys.write(
            file,
            &Conf::new(&["192.0.2.1/24"], &self.ka)
                .with("listen_port: 51820")
                .peers(peers)
                .render(),
        )
    }

    /// `ip netns exec A wg-exec ARGS`.
    fn a(&self, args: &str) -> std::process::Output {
        wg_exec(&format!("ip netns exec {}", self.a_ns()), args)
    }

    fn refresh(&self, log: &str) -> Running {
        Running::start(
            self.a_ns(),
            &format!("-vv refresh {}", self.ia),
            self.keys.dir.path().join(log),
        )
    }

    /// A's live endpoint for the peer `key` ("(none)" without one); None when it is no peer.
    fn endpoint(&self, key: &str) -> Option<String> {
        endpoint_in(self.a_ns(), &self.ia, key)
    }

    fn wait_endpoint(&self, key: &str, want: &str, bound: Duration) -> bool {
        within(bound, || self.endpoint(key).as_deref() == Some(want))
    }

    /// B's wireguard-go keeps sending from the address it was reached at (its sticky source);
    /// setting its port again (51821, as it was) rebinds and forgets it, as a host's WireGuard
    /// does after a network change.
    fn rebind_b(&self) {
        must(&format!(
            "ip netns exec {} wg set {} listen-port 51821",
            self.pair.b.name, self.ib
        ));
    }

    /// B moves from underlay address `from` to `to` and rebinds; A learns `to` by roaming.
    fn roam_b(&self, test: &str, from: &str, to: &str) {
        move_host(&self.pair.b, from, to);
        self.rebind_b();
        assert!(
            self.wait_endpoint(&self.pb, &format!("{to}:51821"), Duration::from_secs(5)),
            "{test}: A did not learn B's new address by roaming: {:?}",
            self.endpoint(&self.pb)
        );
    }

    /// For 4 s (several periods of a refresh), A's endpoint of B stays `want`.
    fn endpoint_stays(&self, test: &str, refresh: &Running, want: &str) {
        let watch = Instant::now();
        while watch.elapsed() < Duration::from_secs(4) {
            assert_eq!(
                self.endpoint(&self.pb).as_deref(),
                Some(want),
                "{test}: the roamed endpoint was replaced after {:?}: {}",
                watch.elapsed(),
                refresh.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn downs(&self) {
        ok(self.a(&format!("down {}", self.ia)));
        ok(wg_exec(
            &format!("ip netns exec {}", self.pair.b.name),
            &format!("down {}", self.ib),
        ));
    }
}

/// Ends a refresh: its passes after the first `skip` are at least 3 and push nothing. Its log.
fn quiet_passes_after(test: &str, refresh: &mut Running, skip: usize) -> String {
    let log = refresh.terminate();
    let after: Vec<String> = passes(&log).into_iter().skip(skip).collect();
    assert!(after.len() >= 3, "{test}: too few passes: {log}");
    for p in &after {
        assert!(p.contains(" 0 endpoints pushed"), "{test}: {p}\n{log}");
    }
    log
}

/// The live endpoint of peer `key` of `iface` in `ns`, from `wg show dump`.
fn endpoint_in(ns: &str, iface: &str, key: &str) -> Option<String> {
    must(&format!("ip netns exec {ns} wg show {iface} dump"))
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f[0] == key)
        .map(|f| f[2].to_string())
}

/// Moves the host in `ns` from underlay address `from` to `to` (same /24): the new address
/// added, the old removed; the subnet route stays (promote_secondaries).
fn move_host(ns: &Netns, from: &str, to: &str) {
    let dev = ns
        .ip("-o -4 address show")
        .lines()
        .find(|l| l.contains(&format!("inet {from}/")))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| panic!("{from} is not in {}", ns.name));
    must(&format!(
        "ip netns exec {} sysctl -qw net.ipv4.conf.all.promote_secondaries=1 net.ipv4.conf.{dev}.promote_secondaries=1",
        ns.name
    ));
    ns.ip(&format!("address add {to}/24 dev {dev}"));
    ns.ip(&format!("address del {from}/24 dev {dev}"));
    let now = ns.ip("-o -4 address show");
    assert!(
        now.contains(&format!("inet {to}/")) && !now.contains(&format!("inet {from}/")),
        "{now}"
    );
    assert!(
        ns.ip("-4 route show").contains("203.0.113.0/24"),
        "the subnet route went with {from}"
    );
}

fn count(log: &str, what: &str) -> usize {
    log.matches(what).count()
}

/// Case 1 of the issue, the NixOS module's dynamic-refresh scenario: B moves to another
/// underlay address and its name follows; A's traffic recovers within two periods (and a
/// handshake's time).
#[test]
fn a_peer_that_moves_is_followed_through_dns() {
    let test = "refresh: a peer that moves";
    if !ready(test) {
        return;
    }
    // B learns A's address from A's packets: it has no endpoint of its own to roam A with.
    let (mut w, ca) = World::named(
        "",
        "persistent_keepalive: 1, dynamic_endpoint_refresh_seconds: 1",
    );
    w.a_up(&ca);
    assert_eq!(w.endpoint(&w.pb).as_deref(), Some("203.0.113.2:51821"));
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(10)).is_some(),
        "{test}: no traffic before the move"
    );
    let mut refresh = w.refresh("refresh.log");
    refresh.wait_passes(1, Duration::from_secs(5));

    // B moves; until its name follows, A's packets go to the old address.
    move_host(&w.pair.b, "203.0.113.2", "203.0.113.4");
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_millis(1500)).is_none(),
        "{test}: traffic went on without the name changing (the check would prove nothing)"
    );
    assert_eq!(w.endpoint(&w.pb).as_deref(), Some("203.0.113.2:51821"));

    w.dns.set(&[(B_NAME, "203.0.113.4")]);
    let changed = Instant::now();
    // Two periods, and a second for the pass itself.
    assert!(
        w.wait_endpoint(&w.pb, "203.0.113.4:51821", Duration::from_secs(3)),
        "{test}: endpoint {:?} {:?} after the name changed: {}",
        w.endpoint(&w.pb),
        changed.elapsed(),
        refresh.log()
    );
    let followed = changed.elapsed();
    // Two periods and a handshake's retry (5 s).
    let recovered = ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(7));
    assert!(
        recovered.is_some(),
        "{test}: no traffic after the endpoint followed: {}",
        refresh.log()
    );
    eprintln!(
        "{test}: endpoint followed {followed:?} after the DNS change, traffic {:?} later",
        recovered.unwrap()
    );
    let log = refresh.terminate();
    assert_eq!(
        count(
            &log,
            &format!("peer b: endpoint 203.0.113.2:51821 -> 203.0.113.4:51821 ({B_ENDPOINT})")
        ),
        1,
        "{test}: {log}"
    );
    assert!(
        passes(&log)
            .iter()
            .any(|p| p.contains("answers changed, device read, 1 endpoint pushed")),
        "{test}: {log}"
    );
    w.downs();
}

/// Case 2 of the issue, roaming is not fought: B moves without a DNS change and keeps talking
/// to A, which learns the new address; refresh never pushes the old (DNS) address back.
#[test]
fn a_roamed_endpoint_is_left_alone() {
    let test = "refresh: roaming is not fought";
    if !ready(test) {
        return;
    }
    let (w, ca) = World::named(
        "endpoint: \"203.0.113.1:51820\", persistent_keepalive: 1",
        "dynamic_endpoint_refresh_seconds: 1",
    );
    w.a_up(&ca);
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(10)).is_some(),
        "{test}: no traffic before the move"
    );
    let mut refresh = w.refresh("refresh.log");
    refresh.wait_passes(1, Duration::from_secs(5));

    // B's wireguard-go keeps sending from the address it was reached at (its sticky source),
    // which is gone; setting its port again rebinds and forgets it, as a host's WireGuard does
    // after a network change. The port stays 51821.
    w.roam_b(test, "203.0.113.2", "203.0.113.3");
    let roamed = refresh.passes().len();
    // Several periods: the roamed endpoint stays, whatever the passes do.
    w.endpoint_stays(test, &refresh, "203.0.113.3:51821");
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(3)).is_some(),
        "{test}: no traffic over the roamed endpoint"
    );
    let log = quiet_passes_after(test, &mut refresh, roamed);
    assert!(!log.contains("peer b: endpoint"), "{test}: {log}");

    // A fresh refresh reads the device at its first pass and sees the roamed endpoint: it is
    // not among the answers, but the handshake is fresh, so it is left alone too.
    let out = w.a(&format!("-vv refresh {} --once", w.ia));
    let once = ok(out);
    let p = passes(&once);
    assert_eq!(p.len(), 1, "{test}: {once}");
    assert!(
        p[0].contains("device read, 0 endpoints pushed"),
        "{test}: {once}"
    );
    assert_eq!(
        w.endpoint(&w.pb).as_deref(),
        Some("203.0.113.3:51821"),
        "{test}: {once}"
    );
    w.downs();
}

/// Case 3 of the issue: the DNS server is down for several periods; the endpoint and the peer
/// stay, one warning for the whole streak; when it answers again (with a new address), the
/// endpoint follows.
#[test]
fn a_dns_outage_keeps_the_endpoint_and_is_said_once() {
    let test = "refresh: a DNS outage";
    if !ready(test) {
        return;
    }
    let (mut w, ca) = World::named(
        "",
        "persistent_keepalive: 1, dynamic_endpoint_refresh_seconds: 1",
    );
    w.a_up(&ca);
    let mut refresh = w.refresh("refresh.log");
    refresh.wait_passes(1, Duration::from_secs(5));

    w.dns.stop();
    assert_eq!(
        resolves_in(w.a_ns(), B_NAME),
        None,
        "{test}: still resolves"
    );
    refresh.wait_log(Duration::from_secs(3), "failure", |l| {
        l.contains("does not resolve")
    });
    let failing_from = refresh.passes().len();
    // Several periods without an answer.
    refresh.wait_passes(failing_from + 4, Duration::from_secs(8));
    let log = refresh.log();
    assert_eq!(
        count(&log, "does not resolve"),
        1,
        "{test}: one warning per streak: {log}"
    );
    assert!(
        log.contains(&format!("peer b: {B_ENDPOINT} does not resolve (",))
            && log.contains("keeping its endpoint, retrying every 1 s"),
        "{test}: {log}"
    );
    assert_eq!(
        w.endpoint(&w.pb).as_deref(),
        Some("203.0.113.2:51821"),
        "{test}: the peer or its endpoint went: {log}"
    );
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(5)).is_some(),
        "{test}: traffic stopped during the outage"
    );

    // B moves while the server is down; the server comes back with the new address.
    move_host(&w.pair.b, "203.0.113.2", "203.0.113.5");
    w.dns.set(&[(B_NAME, "203.0.113.5")]);
    w.dns.start();
    let back = Instant::now();
    assert!(
        w.wait_endpoint(&w.pb, "203.0.113.5:51821", Duration::from_secs(3)),
        "{test}: endpoint {:?} {:?} after the server came back: {}",
        w.endpoint(&w.pb),
        back.elapsed(),
        refresh.log()
    );
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(7)).is_some(),
        "{test}: no traffic after the server came back: {}",
        refresh.log()
    );
    let log = refresh.terminate();
    assert_eq!(
        count(&log, &format!("peer b: {B_ENDPOINT} resolves again")),
        1,
        "{test}: {log}"
    );
    assert_eq!(count(&log, "does not resolve"), 1, "{test}: {log}");
    assert_eq!(
        count(
            &log,
            &format!("peer b: endpoint 203.0.113.2:51821 -> 203.0.113.5:51821 ({B_ENDPOINT})")
        ),
        1,
        "{test}: {log}"
    );
    w.downs();
}

/// Case 4 of the issue: a reload adds and removes named peers while refresh runs; refresh
/// follows the new record (a new peer's name change is pushed; a removed peer is never
/// re-added); down ends refresh, which exits 0 by itself, and nothing is left.
#[test]
fn refresh_follows_reloads_and_ends_with_down() {
    let test = "refresh: reload and down";
    if !ready(test) {
        return;
    }
    let mut w = World::new();
    let keys_c = w.keys.private("c").1;
    let keys_d = w.keys.private("d").1;
    w.dns.set(&[
        (B_NAME, "203.0.113.2"),
        ("c.wg-exec.test", "198.51.100.30"),
        ("d.wg-exec.test", "198.51.100.40"),
    ]);
    w.dns.start();
    w.b_up("");
    let named = |name: &str, key: &str, ip: &str| {
        Peer::new(key, &[ip]).with(format!(
            "name: \"{name}\", endpoint: \"{name}.wg-exec.test:51821\", dynamic_endpoint_refresh_seconds: 1"
        ))
    };
    let c = named("c", &keys_c, "198.18.0.3/32");
    let d = named("d", &keys_d, "198.18.0.4/32");
    let b = w.peer_b("persistent_keepalive: 1, dynamic_endpoint_refresh_seconds: 1");
    let first = w.a_conf("a.ron", vec![b.clone(), c]);
    ok(w.a(&format!("up {} --config {}", w.ia, first.display())));
    assert_eq!(w.endpoint(&keys_c).as_deref(), Some("198.51.100.30:51821"));
    let mut refresh = w.refresh("refresh.log");
    refresh.wait_log(Duration::from_secs(5), "start", |l| {
        l.contains("refreshing 2 peer endpoints known by name") && !passes(l).is_empty()
    });

    // C out, D in.
    let second = w.a_conf("a2.ron", vec![b, d]);
    ok(w.a(&format!("reload {} --config {}", w.ia, second.display())));
    assert_eq!(w.endpoint(&keys_c), None, "{test}: C is still a peer");
    assert_eq!(w.endpoint(&keys_d).as_deref(), Some("198.51.100.40:51821"));
    let reloaded = refresh.passes().len();
    refresh.wait_passes(reloaded + 2, Duration::from_secs(5));

    // Both names change: D's endpoint follows, C stays gone.
    w.dns.set(&[
        (B_NAME, "203.0.113.2"),
        ("c.wg-exec.test", "198.51.100.31"),
        ("d.wg-exec.test", "198.51.100.41"),
    ]);
    assert!(
        w.wait_endpoint(&keys_d, "198.51.100.41:51821", Duration::from_secs(3)),
        "{test}: D's endpoint {:?}: {}",
        w.endpoint(&keys_d),
        refresh.log()
    );
    let pushed = refresh.passes().len();
    refresh.wait_passes(pushed + 2, Duration::from_secs(5));
    assert_eq!(w.endpoint(&keys_c), None, "{test}: C came back");
    let log = refresh.log();
    assert!(
        log.contains(
            "peer d: endpoint 198.51.100.40:51821 -> 198.51.100.41:51821 (d.wg-exec.test:51821)"
        ),
        "{test}: {log}"
    );
    assert!(!log.contains("peer c:"), "{test}: C touched: {log}");
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(5)).is_some(),
        "{test}: B lost its traffic"
    );

    // Down while refresh runs: refresh ends by itself.
    ok(w.a(&format!("down {}", w.ia)));
    let log = refresh.exit_within(Duration::from_secs(3), "after down");
    assert!(
        log.contains(&format!("{} is down: refresh ends", w.ia)),
        "{test}: {log}"
    );
    assert!(!w.pair.a.has_link(&w.ia), "{test}: link left");
    assert!(!socket_exists(&w.ia), "{test}: UAPI socket left");
    assert_eq!(wireguard_go_processes(&w.ia), 0, "{test}: process left");
    let left = text(&sh(&format!("pgrep -f -a 'refresh {}$'", w.ia)).stdout);
    assert!(left.trim().is_empty(), "{test}: refresh left: {left}");
    assert_eq!(
        state_files(&w.ia),
        Vec::<String>::new(),
        "{test}: state left"
    );
    ok(wg_exec(
        &format!("ip netns exec {}", w.pair.b.name),
        &format!("down {}", w.ib),
    ));
}

/// Case 5 of the issue: unchanged answers cost no request after the first pass; a long run
/// makes exactly the requests of a single pass (`--once`), none of them a write.
#[test]
fn unchanged_answers_cost_no_request() {
    let test = "refresh: unchanged answers";
    if !ready(test) {
        return;
    }
    let mut w = World::new();
    let (_, pe) = w.keys.private("e");
    w.dns
        .set(&[(B_NAME, "203.0.113.2"), ("e.wg-exec.test", "198.51.100.50")]);
    w.dns.start();
    w.b_up("");
    let ca = w.a_conf(
        "a.ron",
        vec![
            w.peer_b("persistent_keepalive: 1, dynamic_endpoint_refresh_seconds: 1"),
            Peer::new(&pe, &["198.18.0.5/32"]).with(
                "name: \"e\", endpoint: \"e.wg-exec.test:51821\", dynamic_endpoint_refresh_seconds: 1",
            ),
        ],
    );
    w.a_up(&ca);

    let once = ok(w.a(&format!("-vv refresh {} --once", w.ia)));
    let single = requests(&once);
    assert_eq!(passes(&once).len(), 1, "{test}: {once}");

    let mut refresh = w.refresh("refresh.log");
    refresh.wait_passes(6, Duration::from_secs(10));
    let log = refresh.terminate();
    let p = passes(&log);
    assert!(
        p[0].contains(
            "2 looked up, 2 resolved, answers unchanged, device read, 0 endpoints pushed"
        ),
        "{test}: {log}"
    );
    for line in &p[1..] {
        assert!(
            line.contains("answers unchanged, device not read, 0 endpoints pushed"),
            "{test}: {line}\n{log}"
        );
    }
    let long = requests(&log);
    eprintln!(
        "{test}: {} passes; requests: netlink {} ({} datagrams), uapi writes {}, uapi reads {}",
        p.len(),
        long[0],
        long[1],
        long[2],
        long[3]
    );
    assert_eq!(long[2], 0, "{test}: uapi writes: {log}");
    assert_eq!(long[3], 1, "{test}: one read, at the first pass: {log}");
    assert_eq!(
        long,
        single,
        "{test}: {} passes made other requests than one pass:\n{once}\n{log}",
        p.len()
    );
    assert_eq!(
        w.endpoint(&pe).as_deref(),
        Some("198.51.100.50:51821"),
        "{test}"
    );
    w.downs();
}

/// Case 6 of the issue: `socket_namespace: A`, wg-exec run from another namespace of the
/// test's; names resolve as in A, with /etc/netns/A/resolv.conf (A's DNS server) and
/// /etc/netns/A/hosts, which wg-exec binds itself (in its resolver's child), at up and at
/// refresh.
#[test]
fn names_resolve_with_the_socket_namespaces_etc_files() {
    let test = "refresh: /etc/netns of the socket namespace";
    if !ready(test) {
        return;
    }
    let mut w = World::new();
    // Where wg-exec runs: no route anywhere, no /etc/netns files.
    let home = Netns::new("h");
    let (_, pe) = w.keys.private("e");
    w.dns.set(&[(B_NAME, "203.0.113.2")]);
    w.dns.etc_hosts(&[("e.wg-exec.test", "198.51.100.60")]);
    w.dns.start();
    // Each name is known to one source only.
    assert_eq!(
        resolves_in(w.a_ns(), "e.wg-exec.test").as_deref(),
        Some("198.51.100.60")
    );
    for name in [B_NAME, "e.wg-exec.test"] {
        assert_eq!(
            resolves_in(&home.name, name),
            None,
            "{test}: {name} resolves outside A"
        );
    }
    w.b_up("");
    let ca = w.keys.write(
        "a.ron",
        &Conf::new(&["192.0.2.1/24"], &w.ka)
            .with("listen_port: 51820, backend: Userspace")
            .with(format!("socket_namespace: \"{}\"", w.a_ns()))
            .peer(w.peer_b("persistent_keepalive: 1, dynamic_endpoint_refresh_seconds: 1"))
            .peer(Peer::new(&pe, &["198.18.0.6/32"]).with(
                "name: \"e\", endpoint: \"e.wg-exec.test:51821\", dynamic_endpoint_refresh_seconds: 1",
            ))
            .render(),
    );
    let from_home = format!("ip netns exec {}", home.name);
    let up = ok(wg_exec(
        &from_home,
        &format!("up {} --config {}", w.ia, ca.display()),
    ));
    assert!(!up.contains("did not resolve"), "{test}: {up}");
    assert_eq!(
        w.endpoint(&w.pb).as_deref(),
        Some("203.0.113.2:51821"),
        "{test}: the name A's DNS server knows: {up}"
    );
    assert_eq!(
        w.endpoint(&pe).as_deref(),
        Some("198.51.100.60:51821"),
        "{test}: the name /etc/netns/A/hosts knows: {up}"
    );
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(10)).is_some(),
        "{test}: no traffic"
    );

    // Refresh, from the same place: the hosts file changes, E (no handshake ever, so stale)
    // follows at the first pass.
    w.dns.etc_hosts(&[("e.wg-exec.test", "198.51.100.61")]);
    let once = ok(wg_exec(&from_home, &format!("-vv refresh {} --once", w.ia)));
    assert_eq!(
        w.endpoint(&pe).as_deref(),
        Some("198.51.100.61:51821"),
        "{test}: {once}"
    );
    assert!(
        once.contains(
            "peer e: endpoint 198.51.100.60:51821 -> 198.51.100.61:51821 (e.wg-exec.test:51821)"
        ),
        "{test}: {once}"
    );
    assert_eq!(
        w.endpoint(&w.pb).as_deref(),
        Some("203.0.113.2:51821"),
        "{test}: {once}"
    );
    ok(wg_exec(&from_home, &format!("down {}", w.ia)));
    assert!(!w.pair.a.has_link(&w.ia), "{test}: link left");
    ok(wg_exec(
        &format!("ip netns exec {}", w.pair.b.name),
        &format!("down {}", w.ib),
    ));
}

/// Case 7 of the issue: a name that does not resolve at up (the DNS server not running yet);
/// up ends within its bound with the peer configured without an endpoint and a warning;
/// refresh (period 0) sets it once the server answers, and traffic flows.
#[test]
fn a_name_unresolved_at_up_is_set_by_refresh() {
    let test = "refresh: unresolved at up";
    if !ready(test) {
        return;
    }
    let mut w = World::new();
    w.dns.set(&[(B_NAME, "203.0.113.2")]);
    assert_eq!(resolves_in(w.a_ns(), B_NAME), None);
    w.b_up("");
    let ca = w.a_conf(
        "a.ron",
        vec![w.peer_b(
            "persistent_keepalive: 1, dynamic_endpoint_refresh_seconds: 0, dynamic_endpoint_refresh_restart_seconds: 1",
        )],
    );
    let started = Instant::now();
    let up = w.a_up(&ca);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(6500),
        "{test}: up took {took:?}: {up}"
    );
    assert!(
        up.contains(&format!("peer b: endpoint {B_ENDPOINT} did not resolve"))
            && up.contains("the peer keeps the endpoint it has (a new peer has none)"),
        "{test}: no warning: {up}"
    );
    let shown = must(&format!(
        "ip netns exec {} wg show {} endpoints",
        w.a_ns(),
        w.ia
    ));
    assert_eq!(shown.trim(), format!("{}\t(none)", w.pb), "{test}");

    let mut refresh = w.refresh("refresh.log");
    refresh.wait_log(Duration::from_secs(5), "failure", |l| {
        l.contains("does not resolve")
    });
    assert_eq!(w.endpoint(&w.pb).as_deref(), Some("(none)"));
    w.dns.start();
    let answering = Instant::now();
    assert!(
        w.wait_endpoint(&w.pb, "203.0.113.2:51821", Duration::from_secs(3)),
        "{test}: endpoint {:?} {:?} after the server answered: {}",
        w.endpoint(&w.pb),
        answering.elapsed(),
        refresh.log()
    );
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(7)).is_some(),
        "{test}: no traffic: {}",
        refresh.log()
    );
    let log = refresh.terminate();
    assert!(
        log.contains(&format!(
            "peer b: endpoint none -> 203.0.113.2:51821 ({B_ENDPOINT})"
        )),
        "{test}: {log}"
    );
    eprintln!("{test}: up took {took:?}");
    w.downs();
}

/// With case 7: up tries a name for its whole bound (5 s, README "Boot without DNS"), so a DNS
/// server that answers 4 s after up started is still used by up itself.
#[test]
fn up_tries_a_name_for_its_whole_bound() {
    let test = "refresh: up's bound";
    if !ready(test) {
        return;
    }
    let mut w = World::new();
    w.dns.set(&[(B_NAME, "203.0.113.2")]);
    w.b_up("");
    let ca = w.a_conf(
        "a.ron",
        vec![w.peer_b("dynamic_endpoint_refresh_seconds: 0")],
    );
    let log = w.keys.dir.path().join("up.log");
    let started = Instant::now();
    let mut up = Running::start(
        w.a_ns(),
        &format!("up {} --config {}", w.ia, ca.display()),
        log.clone(),
    );
    let mut gave_up = None;
    while gave_up.is_none() && started.elapsed() < Duration::from_secs(4) {
        gave_up = up.child.try_wait().unwrap().map(|_| started.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    w.dns.start();
    let out = up.exit_within(Duration::from_secs(5), "(up)");
    let took = started.elapsed();
    assert!(
        gave_up.is_none(),
        "{test}: up gave up on {B_ENDPOINT} after {:?} of its 5 s bound, before the server \
         answered (4 s): {out}",
        gave_up.unwrap()
    );
    assert!(!out.contains("did not resolve"), "{test}: {out}");
    assert_eq!(
        w.endpoint(&w.pb).as_deref(),
        Some("203.0.113.2:51821"),
        "{test}: up took {took:?}: {out}"
    );
    w.downs();
}

/// A reload that changes an endpoint to a name that does not resolve yet: the peer keeps its
/// endpoint, the warning says so, and the record keeps the old one, so the next reload (once
/// the name resolves) sends the new one instead of finding nothing to do.
#[test]
fn an_endpoint_name_unresolved_at_reload_is_sent_by_the_next_reload() {
    let test = "refresh: unresolved at reload";
    if !ready(test) {
        return;
    }
    let mut w = World::new();
    w.b_up("");
    let by_address =
        Peer::new(&w.pb, &["192.0.2.2/32"]).with("name: \"b\", endpoint: \"203.0.113.99:51821\"");
    let ca = w.a_conf("a.ron", vec![by_address]);
    w.a_up(&ca);
    assert_eq!(w.endpoint(&w.pb).as_deref(), Some("203.0.113.99:51821"));
    // The name, while no DNS server answers.
    let ca = w.a_conf("a.ron", vec![w.peer_b("")]);
    let out = ok(w.a(&format!("reload {} --config {}", w.ia, ca.display())));
    assert!(
        out.contains(&format!("peer b: endpoint {B_ENDPOINT} did not resolve"))
            && out.contains("the peer keeps the endpoint it has"),
        "{test}: no warning: {out}"
    );
    assert_eq!(w.endpoint(&w.pb).as_deref(), Some("203.0.113.99:51821"));
    w.dns.set(&[(B_NAME, "203.0.113.2")]);
    w.dns.start();
    let out = ok(w.a(&format!("reload {} --config {}", w.ia, ca.display())));
    assert_eq!(
        w.endpoint(&w.pb).as_deref(),
        Some("203.0.113.2:51821"),
        "{test}: the next reload did not send the name's address: {out}"
    );
    let st = w.a(&format!("status {} --config {}", w.ia, ca.display()));
    assert_eq!(st.status.code(), Some(0), "{test}: {}", text(&st.stdout));
    w.downs();
}

/// An up killed while a name is being resolved in its forked resolver (the socket namespace
/// has /etc/netns/NS/resolv.conf) with unbounded retries: the resolver dies with it and does
/// not keep the interface's lock, so down goes ahead at once.
#[test]
fn a_killed_up_leaves_no_resolver_holding_the_lock() {
    let test = "refresh: killed up, resolver child";
    if !ready(test) {
        return;
    }
    let w = World::new();
    // From the machine's namespace, the tunnel in A's: names resolve in a forked child that
    // binds /etc/netns/A/* over /etc/*.
    let ca = w.keys.write(
        "a.ron",
        &Conf::new(&["192.0.2.1/24"], &w.ka)
            .with(format!(
                "listen_port: 51820, socket_namespace: \"{}\"",
                w.a_ns()
            ))
            .peer(w.peer_b(""))
            .render(),
    );
    let mut up = std::process::Command::new(wg_exec_bin())
        .args(["up", &w.ia, "--config"])
        .arg(&ca)
        .env("WG_ENDPOINT_RESOLUTION_RETRIES", "infinity")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Retrying in its forked resolver (a child named wg-exec; wireguard-go is a child too).
    let pid = up.id();
    let resolvers = || -> Vec<String> {
        must(&format!("pgrep -P {pid} || true"))
            .split_whitespace()
            .filter(|c| {
                std::fs::read_to_string(format!("/proc/{c}/comm"))
                    .is_ok_and(|n| n.trim() == "wg-exec")
            })
            .map(str::to_string)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut children = resolvers();
    while children.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        children = resolvers();
    }
    assert!(!children.is_empty(), "{test}: no resolver child appeared");
    must(&format!("kill -KILL {pid}"));
    up.wait().unwrap();
    let gone = |c: &String| {
        std::fs::read_to_string(format!("/proc/{c}/status"))
            .map_or(true, |s| s.contains("State:\tZ"))
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while !children.iter().all(gone) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for child in &children {
        assert!(
            gone(child),
            "{test}: resolver {child} of the killed up still runs"
        );
    }
    let out = wg_exec(
        "",
        &format!("down {} --wait 3 --config {}", w.ia, ca.display()),
    );
    assert_eq!(out.status.code(), Some(0), "{test}: {}", text(&out.stderr));
}

/// A and B up with B known by the name answering .2, traffic flowing; then B moves to .3 and
/// its name follows while no refresh runs (issue 20, case 1). Returns the world.
fn moved_while_no_refresh_ran(test: &str) -> World {
    // B learns A's address from A's packets.
    let (mut w, ca) = World::named(
        "",
        "persistent_keepalive: 1, dynamic_endpoint_refresh_seconds: 1",
    );
    w.a_up(&ca);
    assert_eq!(w.endpoint(&w.pb).as_deref(), Some("203.0.113.2:51821"));
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(10)).is_some(),
        "{test}: no traffic before the move"
    );
    move_host(&w.pair.b, "203.0.113.2", "203.0.113.3");
    w.dns.set(&[(B_NAME, "203.0.113.3")]);
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_millis(1500)).is_none(),
        "{test}: traffic went on without the endpoint changing (the check would prove nothing)"
    );
    assert_eq!(w.endpoint(&w.pb).as_deref(), Some("203.0.113.2:51821"));
    w
}

const MOVED_PUSH: &str =
    "peer b: endpoint 203.0.113.2:51821 -> 203.0.113.3:51821 (b.wg-exec.test:51821): the name resolves elsewhere now";

/// Issue 20, case 1, `--once` (a timer's shape): a name that moved while no refresh ran is
/// followed by a single pass, although the handshake is fresh; a second `--once` pushes
/// nothing (the new address is the baseline now).
#[test]
fn a_dns_change_before_refresh_once_is_followed() {
    let test = "refresh: a change before --once";
    if !ready(test) {
        return;
    }
    let w = moved_while_no_refresh_ran(test);
    let once = ok(w.a(&format!("-vv refresh {} --once", w.ia)));
    assert_eq!(
        w.endpoint(&w.pb).as_deref(),
        Some("203.0.113.3:51821"),
        "{test}: --once did not follow the name: {once}"
    );
    assert_eq!(count(&once, MOVED_PUSH), 1, "{test}: {once}");
    let p = passes(&once);
    assert_eq!(p.len(), 1, "{test}: {once}");
    assert!(
        p[0].contains("answers changed, device read, 1 endpoint pushed"),
        "{test}: {once}"
    );
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(7)).is_some(),
        "{test}: no traffic after the endpoint followed: {once}"
    );
    let again = ok(w.a(&format!("-vv refresh {} --once", w.ia)));
    let p = passes(&again);
    assert_eq!(p.len(), 1, "{test}: {again}");
    assert!(
        p[0].contains("answers unchanged, device read, 0 endpoints pushed"),
        "{test}: {again}"
    );
    assert_eq!(w.endpoint(&w.pb).as_deref(), Some("203.0.113.3:51821"));
    w.downs();
}

/// Issue 20, case 1, a (re)started loop: its first pass follows a name that moved while no
/// refresh ran, at once rather than when the handshake goes stale (minutes).
#[test]
fn a_dns_change_before_the_refresh_loop_starts_is_followed() {
    let test = "refresh: a change before the loop";
    if !ready(test) {
        return;
    }
    let w = moved_while_no_refresh_ran(test);
    let started = Instant::now();
    let mut refresh = w.refresh("refresh.log");
    assert!(
        w.wait_endpoint(&w.pb, "203.0.113.3:51821", Duration::from_secs(3)),
        "{test}: endpoint {:?} {:?} after refresh started: {}",
        w.endpoint(&w.pb),
        started.elapsed(),
        refresh.log()
    );
    eprintln!("{test}: followed {:?} after start", started.elapsed());
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(7)).is_some(),
        "{test}: no traffic after the endpoint followed: {}",
        refresh.log()
    );
    let log = refresh.terminate();
    assert_eq!(count(&log, MOVED_PUSH), 1, "{test}: {log}");
    assert!(
        passes(&log)[0].contains("answers changed, device read, 1 endpoint pushed"),
        "{test}: the first pass did not push: {log}"
    );
    w.downs();
}

/// Issue 20, case 1: after refresh followed a DNS change, the peer roams (no DNS change): the
/// running refresh does not push the name's address back, and neither does a restarted one (it
/// reads back the address it pushed as the baseline, not the one up resolved).
#[test]
fn a_roam_after_a_dns_change_is_left_alone_also_after_a_restart() {
    let test = "refresh: a roam after a change";
    if !ready(test) {
        return;
    }
    // B knows A by address and keeps talking to it: it can roam A's endpoint for it.
    let (mut w, ca) = World::named(
        "endpoint: \"203.0.113.1:51820\", persistent_keepalive: 1",
        "dynamic_endpoint_refresh_seconds: 1",
    );
    w.a_up(&ca);
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(10)).is_some(),
        "{test}: no traffic at first"
    );
    let mut refresh = w.refresh("refresh.log");
    refresh.wait_passes(1, Duration::from_secs(5));

    // The name moves with B (B's own packets could roam it too; whichever is first, the
    // endpoint is .3).
    move_host(&w.pair.b, "203.0.113.2", "203.0.113.3");
    w.dns.set(&[(B_NAME, "203.0.113.3")]);
    w.rebind_b();
    assert!(
        w.wait_endpoint(&w.pb, "203.0.113.3:51821", Duration::from_secs(5)),
        "{test}: endpoint {:?} after the name moved: {}",
        w.endpoint(&w.pb),
        refresh.log()
    );
    // Until a pass has seen the new answer (pushed, or found B already there).
    refresh.wait_log(Duration::from_secs(5), "a pass with the new answer", |l| {
        passes(l)
            .iter()
            .any(|p| p.contains("answers changed, device read"))
    });

    // B roams to .4; the name stays .3.
    w.roam_b(test, "203.0.113.3", "203.0.113.4");
    let roamed = refresh.passes().len();
    w.endpoint_stays(test, &refresh, "203.0.113.4:51821");
    let log = quiet_passes_after(test, &mut refresh, roamed);
    assert!(
        !log.contains("-> 203.0.113.3:51821 (b.wg-exec.test:51821): the handshake"),
        "{test}: {log}"
    );

    // Restarted (a package upgrade, `systemctl restart`): the loop and `--once` both leave the
    // roam alone.
    let mut restarted = w.refresh("restarted.log");
    restarted.wait_passes(3, Duration::from_secs(5));
    assert_eq!(
        w.endpoint(&w.pb).as_deref(),
        Some("203.0.113.4:51821"),
        "{test}: the restarted refresh replaced the roamed endpoint: {}",
        restarted.log()
    );
    let log = restarted.terminate();
    assert!(!log.contains("peer b: endpoint"), "{test}: {log}");
    assert!(
        passes(&log)[0].contains("answers unchanged, device read, 0 endpoints pushed"),
        "{test}: {log}"
    );
    let once = ok(w.a(&format!("-vv refresh {} --once", w.ia)));
    assert!(!once.contains("peer b: endpoint"), "{test}: {once}");
    assert_eq!(
        w.endpoint(&w.pb).as_deref(),
        Some("203.0.113.4:51821"),
        "{test}: {once}"
    );
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(3)).is_some(),
        "{test}: no traffic over the roamed endpoint"
    );
    w.downs();
}

/// Issue 20, case 1, boot without DNS, with a period: the name does not resolve at up; refresh
/// sets it once DNS answers, and that address is the baseline: a restarted refresh pushes
/// nothing, and a later move of the name is followed by `--once`.
#[test]
fn a_name_set_after_boot_without_dns_is_the_baseline() {
    let test = "refresh: boot without DNS, then a change";
    if !ready(test) {
        return;
    }
    let mut w = World::new();
    w.dns.set(&[(B_NAME, "203.0.113.2")]);
    w.b_up("");
    let ca = w.a_conf(
        "a.ron",
        vec![w.peer_b("persistent_keepalive: 1, dynamic_endpoint_refresh_seconds: 1")],
    );
    let up = w.a_up(&ca);
    assert!(
        up.contains(&format!("peer b: endpoint {B_ENDPOINT} did not resolve")),
        "{test}: no warning: {up}"
    );
    assert_eq!(w.endpoint(&w.pb).as_deref(), Some("(none)"));
    let mut refresh = w.refresh("refresh.log");
    refresh.wait_log(Duration::from_secs(5), "failure", |l| {
        l.contains("does not resolve")
    });
    w.dns.start();
    assert!(
        w.wait_endpoint(&w.pb, "203.0.113.2:51821", Duration::from_secs(3)),
        "{test}: endpoint {:?} after the server answered: {}",
        w.endpoint(&w.pb),
        refresh.log()
    );
    let log = refresh.terminate();
    assert!(
        log.contains(&format!(
            "peer b: endpoint none -> 203.0.113.2:51821 ({B_ENDPOINT}): the peer had no endpoint"
        )),
        "{test}: {log}"
    );
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(7)).is_some(),
        "{test}: no traffic"
    );
    let once = ok(w.a(&format!("-vv refresh {} --once", w.ia)));
    assert!(
        passes(&once)[0].contains("answers unchanged, device read, 0 endpoints pushed"),
        "{test}: {once}"
    );
    move_host(&w.pair.b, "203.0.113.2", "203.0.113.3");
    w.dns.set(&[(B_NAME, "203.0.113.3")]);
    let once = ok(w.a(&format!("-vv refresh {} --once", w.ia)));
    assert_eq!(count(&once, MOVED_PUSH), 1, "{test}: {once}");
    assert_eq!(w.endpoint(&w.pb).as_deref(), Some("203.0.113.3:51821"));
    w.downs();
}

/// Issue 20, case 1, as the non-root unit user (uid 65534, ambient CAP_NET_ADMIN, its own
/// state directory and /run/wireguard): `--once` follows a name that moved while no refresh
/// ran, and writes the new baseline into the unit user's record (a second `--once` pushes
/// nothing).
#[test]
fn a_dns_change_before_refresh_once_is_followed_as_the_unit_user() {
    let test = "refresh: a change before --once, unit user";
    if !ready(test) {
        return;
    }
    let (mut w, ca) = World::named(
        "",
        "persistent_keepalive: 1, dynamic_endpoint_refresh_seconds: 1",
    );
    let unit = Wg::new(
        Who::UnitUser(&["net_admin"]),
        w.keys.dir.path(),
        w.a_ns(),
        &w.ia,
        &ca,
    );
    let (a_ns, ia, pb) = (w.a_ns().to_string(), w.ia.clone(), w.pb.clone());
    let as_unit = |args: &str| unit.args(args);
    let endpoint = || {
        wg_dump_in(&a_ns, &ia, Some(&unit.sockets))
            .into_iter()
            .skip(1)
            .find(|f| f[0] == pb)
            .map(|f| f[2].clone())
    };
    ok(as_unit(&format!("up {} --config {}", w.ia, ca.display())));
    assert_eq!(endpoint().as_deref(), Some("203.0.113.2:51821"));
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(10)).is_some(),
        "{test}: no traffic before the move"
    );
    move_host(&w.pair.b, "203.0.113.2", "203.0.113.3");
    w.dns.set(&[(B_NAME, "203.0.113.3")]);

    let once = ok(as_unit(&format!("-vv refresh {} --once", w.ia)));
    assert_eq!(
        endpoint().as_deref(),
        Some("203.0.113.3:51821"),
        "{test}: {once}"
    );
    assert_eq!(count(&once, MOVED_PUSH), 1, "{test}: {once}");
    assert!(!once.contains("cannot write"), "{test}: {once}");
    assert!(
        ping_within(w.a_ns(), "192.0.2.2", Duration::from_secs(7)).is_some(),
        "{test}: no traffic after the endpoint followed: {once}"
    );
    let again = ok(as_unit(&format!("-vv refresh {} --once", w.ia)));
    assert!(
        passes(&again)[0].contains("answers unchanged, device read, 0 endpoints pushed"),
        "{test}: {again}"
    );
    ok(as_unit(&format!("down {}", w.ia)));
    assert!(!w.pair.a.has_link(&w.ia), "{test}: link left");
    ok(wg_exec(
        &format!("ip netns exec {}", w.pair.b.name),
        &format!("down {}", w.ib),
    ));
}
