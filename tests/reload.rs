//! `wg-exec reload` and `wg-exec status` on the real userspace backends, in namespaces the tests
//! make: a live reload under traffic loses no packet and no session, a fault at every step kind
//! of a reload leaves the interface exactly as it was, a reload SIGKILLed in the middle of 2,000
//! peers is finished by the next one and down leaves no trace, a prefix moving from one peer to
//! another is never unrouted, and status tells each kind of drift from what is not drift.
//!
//! wg-exec runs in the plain shape (`ip netns exec NS wg-exec ...`, no namespace option), as users
//! write it. The observers are `ip -j` and `wg show dump`; wg-exec itself is never asked what it
//! did, except where status is what is tested. The fault and pause switches need the
//! `fault-injection` feature: `cargo test --features wg-exec/fault-injection --test reload`.

mod support;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use support::conf;
use support::*;

// ---------------------------------------------------------------------------------------------
// What a test configures, and expects to find afterwards.

/// A peer as a test configures it and expects to find it on the device.
#[derive(Clone, Debug)]
struct P {
    name: Option<String>,
    key: String,
    ips: Vec<String>,
    endpoint: Option<String>,
    keepalive: Option<u16>,
    /// Other fields, as RON (a preshared key file).
    extra: String,
}

impl P {
    fn new(name: &str, key: &str, ips: &[&str]) -> P {
        P {
            name: (!name.is_empty()).then(|| name.to_string()),
            key: key.to_string(),
            ips: ips.iter().map(|s| s.to_string()).collect(),
            endpoint: None,
            keepalive: None,
            extra: String::new(),
        }
    }

    fn endpoint(mut self, e: &str) -> P {
        self.endpoint = Some(e.to_string());
        self
    }

    fn keepalive(mut self, k: u16) -> P {
        self.keepalive = Some(k);
        self
    }

    fn extra(mut self, fragment: impl Into<String>) -> P {
        self.extra = fragment.into();
        self
    }

    fn ips(mut self, ips: &[&str]) -> P {
        self.ips = ips.iter().map(|s| s.to_string()).collect();
        self
    }

    fn conf(&self) -> conf::Peer {
        let ips: Vec<&str> = self.ips.iter().map(String::as_str).collect();
        let mut p = conf::Peer::new(&self.key, &ips);
        if let Some(n) = &self.name {
            p = p.with(format!("name: \"{n}\""));
        }
        if let Some(e) = &self.endpoint {
            p = p.with(format!("endpoint: \"{e}\""));
        }
        if let Some(k) = self.keepalive {
            p = p.with(format!("persistent_keepalive: {k}"));
        }
        p.with(self.extra.clone())
    }
}

/// An interface as a test configures it and expects to find it.
#[derive(Clone, Debug)]
struct Spec {
    ips: Vec<String>,
    key_file: PathBuf,
    /// The public key of `key_file`.
    public: String,
    listen_port: Option<u16>,
    mtu: Option<u32>,
    fwmark: Option<u32>,
    /// Other interface fields, as RON (the backend).
    extra: String,
    peers: Vec<P>,
}

impl Spec {
    fn new(ips: &[&str], (key_file, public): &(PathBuf, String)) -> Spec {
        Spec {
            ips: ips.iter().map(|s| s.to_string()).collect(),
            key_file: key_file.clone(),
            public: public.clone(),
            listen_port: None,
            mtu: None,
            fwmark: None,
            extra: String::new(),
            peers: Vec::new(),
        }
    }

    fn render(&self) -> String {
        let ips: Vec<&str> = self.ips.iter().map(String::as_str).collect();
        let mut c = conf::Conf::new(&ips, &self.key_file).with(self.extra.clone());
        if let Some(p) = self.listen_port {
            c = c.with(format!("listen_port: {p}"));
        }
        if let Some(m) = self.mtu {
            c = c.with(format!("mtu: {m}"));
        }
        if let Some(m) = self.fwmark {
            c = c.with(format!("fwmark: \"0x{m:x}\""));
        }
        c.peers(self.peers.iter().map(P::conf)).render()
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, self.render()).unwrap();
    }

    fn peer_mut(&mut self, name: &str) -> &mut P {
        self.peers
            .iter_mut()
            .find(|p| p.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no peer {name}"))
    }
}

/// A public key nobody holds: 32 bytes from a tag and a number (any 32 bytes are a valid
/// Curve25519 public key).
fn fake_key(tag: u8, i: u32) -> String {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    b[30] = 0x5e;
    b[31] = tag;
    wg_exec_steps::Key::from_bytes(b, false).to_base64()
}

/// "192.0.2.2" as `ip -j` prints a host route, normalized to "192.0.2.2/32".
fn net(s: &str) -> String {
    if s.contains('/') {
        let n: ipnet::IpNet = s.parse().unwrap_or_else(|_| panic!("not a prefix: {s}"));
        return n.trunc().to_string();
    }
    match s.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => format!("{s}/32"),
        Ok(std::net::IpAddr::V6(_)) => format!("{s}/128"),
        Err(_) => panic!("not an address: {s}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Observers: `wg show dump` and `ip -j`.

#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    psk: String,
    endpoint: String,
    ips: BTreeSet<String>,
    handshake: u64,
    rx: u64,
    tx: u64,
    keepalive: String,
}

#[derive(Clone, Debug)]
struct Dump {
    public: String,
    port: String,
    fwmark: String,
    peers: BTreeMap<String, Row>,
}

impl Dump {
    fn parse(lines: Vec<Vec<String>>) -> Dump {
        assert!(!lines.is_empty(), "empty dump");
        let head = &lines[0];
        assert_eq!(head.len(), 4, "device line {head:?}");
        let mut peers = BTreeMap::new();
        for l in &lines[1..] {
            assert_eq!(l.len(), 8, "peer line {l:?}");
            let ips = match l[3].as_str() {
                "(none)" => BTreeSet::new(),
                list => list.split(',').map(net).collect(),
            };
            let num = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("{l:?}"));
            let old = peers.insert(
                l[0].clone(),
                Row {
                    psk: l[1].clone(),
                    endpoint: l[2].clone(),
                    ips,
                    handshake: num(&l[4]),
                    rx: num(&l[5]),
                    tx: num(&l[6]),
                    keepalive: l[7].clone(),
                },
            );
            assert!(old.is_none(), "peer twice in the dump: {l:?}");
        }
        Dump {
            public: head[1].clone(),
            port: head[2].clone(),
            fwmark: head[3].clone(),
            peers,
        }
    }

    fn of(ns: &Netns, iface: &str) -> Dump {
        Dump::parse(ns.wg_dump(iface))
    }

    /// Everything but what changes on its own (handshake times and transfer counters), in a
    /// stable order (wireguard-go lists peers in no fixed order).
    fn stable(&self) -> String {
        let mut s = format!(
            "device {} port {} fwmark {}\n",
            self.public, self.port, self.fwmark
        );
        for (k, r) in &self.peers {
            s.push_str(&format!(
                "peer {k} psk {} endpoint {} ips {:?} keepalive {}\n",
                r.psk, r.endpoint, r.ips, r.keepalive
            ));
        }
        s
    }

    fn row(&self, key: &str) -> &Row {
        self.peers
            .get(key)
            .unwrap_or_else(|| panic!("peer {key} not on the device: {self:?}"))
    }
}

fn ip_json(ns: &Netns, args: &str) -> Value {
    serde_json::from_str(&ns.ip(&format!("-j {args}"))).unwrap()
}

/// The global addresses of the link ("192.0.2.1/24").
fn addresses(ns: &Netns, iface: &str) -> BTreeSet<String> {
    let v = ip_json(ns, &format!("address show dev {iface}"));
    v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

fn link(ns: &Netns, iface: &str) -> Value {
    ip_json(ns, &format!("link show dev {iface}"))[0].clone()
}

/// The routes of the main table through the link: (the link's own subnets, the others).
fn routes(ns: &Netns, iface: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut kernel, mut other) = (BTreeSet::new(), BTreeSet::new());
    for fam in ["-4", "-6"] {
        let v = ip_json(ns, &format!("{fam} route show dev {iface}"));
        for r in v.as_array().unwrap() {
            let dst = net(r["dst"].as_str().unwrap());
            match r["protocol"].as_str() {
                Some("kernel") if dst == "fe80::/64" => {}
                Some("kernel") => {
                    kernel.insert(dst);
                }
                _ => {
                    other.insert(dst);
                }
            }
        }
    }
    (kernel, other)
}

/// The device and the link are exactly what `spec` says: the peer set, each peer's endpoint,
/// keepalive and allowed IPs, the listen port, fwmark, MTU, the addresses, and the routes (one
/// per allowed IP, the subnets of the addresses, nothing else).
fn assert_matches(ns: &Netns, iface: &str, spec: &Spec, own_key_reported: bool, what: &str) {
    let d = Dump::of(ns, iface);
    if own_key_reported {
        assert_eq!(d.public, spec.public, "{what}: public key");
    }
    if let Some(p) = spec.listen_port {
        assert_eq!(d.port, p.to_string(), "{what}: listen port");
    }
    let mark = match spec.fwmark {
        Some(m) if m != 0 => format!("0x{m:x}"),
        _ => "off".into(),
    };
    assert_eq!(d.fwmark, mark, "{what}: fwmark");
    let want: BTreeSet<&str> = spec.peers.iter().map(|p| p.key.as_str()).collect();
    let have: BTreeSet<&str> = d.peers.keys().map(String::as_str).collect();
    assert_eq!(have, want, "{what}: the peers");
    for p in &spec.peers {
        let r = d.row(&p.key);
        let ips: BTreeSet<String> = p.ips.iter().map(|s| net(s)).collect();
        assert_eq!(r.ips, ips, "{what}: allowed IPs of {:?}", p.name);
        if let Some(e) = &p.endpoint {
            assert_eq!(&r.endpoint, e, "{what}: endpoint of {:?}", p.name);
        }
        let keepalive = match p.keepalive {
            Some(k) if k != 0 => k.to_string(),
            _ => "off".into(),
        };
        assert_eq!(r.keepalive, keepalive, "{what}: keepalive of {:?}", p.name);
    }
    let addrs: BTreeSet<String> = spec.ips.iter().cloned().collect();
    assert_eq!(addresses(ns, iface), addrs, "{what}: addresses");
    let l = link(ns, iface);
    if let Some(m) = spec.mtu {
        assert_eq!(l["mtu"], m, "{what}: MTU");
    }
    assert!(
        l["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{what}: the link is up: {l}"
    );
    let (kernel, other) = routes(ns, iface);
    let subnets: BTreeSet<String> = spec
        .ips
        .iter()
        .map(|a| a.parse::<ipnet::IpNet>().unwrap())
        .filter(|n| n.prefix_len() < n.max_prefix_len())
        .map(|n| n.trunc().to_string())
        .collect();
    assert_eq!(
        kernel, subnets,
        "{what}: the subnet routes of the addresses"
    );
    let allowed: BTreeSet<String> = spec
        .peers
        .iter()
        .flat_map(|p| p.ips.iter().map(|s| net(s)))
        .collect();
    assert_eq!(other, allowed, "{what}: one route per allowed IP, no other");
}

// ---------------------------------------------------------------------------------------------
// Running wg-exec and watching it.

fn in_ns(ns: &Netns) -> String {
    format!("ip netns exec {}", ns.name)
}

/// wg-exec in `ns`, with environment `env` ("" or "K=V ...").
fn run(ns: &Netns, env: &str, args: &str) -> Output {
    wg_exec(&format!("{} env {env}", in_ns(ns)), args)
}

/// A ping running in the background, its output read line by line.
struct Ping {
    child: Child,
    lines: mpsc::Receiver<String>,
    out: String,
}

impl Ping {
    fn start(ns: &Netns, addr: &str, interval: &str, count: u32) -> Ping {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "ping", "-n", "-W", "1"])
            .args(["-i", interval, "-c", &count.to_string(), addr])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ping {
            child,
            lines,
            out: String::new(),
        }
    }

    /// Waits (at most 20 s) until `n` replies came back.
    fn replies(&mut self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = 0;
        while got < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if l.contains("bytes from") {
                        got += 1;
                    }
                    self.out.push_str(&l);
                    self.out.push('\n');
                }
                Err(e) => panic!("{n} ping replies did not come ({e}): {}", self.out),
            }
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the end; returns (transmitted, received) from the summary, and the output.
    fn finish(mut self) -> (u64, u64, String) {
        let status = self.child.wait().unwrap();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.out.push_str(&l);
            self.out.push('\n');
        }
        let mut err = String::new();
        let _ = self.child.stderr.as_mut().unwrap().read_to_string(&mut err);
        let summary = self
            .out
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no ping summary ({status}): {}{err}", self.out))
            .to_string();
        let field = |i: usize| -> u64 {
            summary
                .split(", ")
                .nth(i)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        (field(0), field(1), self.out)
    }
}

/// Echo requests the namespace has received (all addresses), from its own /proc/net/snmp.
fn echo_requests_received(ns: &Netns) -> u64 {
    let text = String::from_utf8(ns.exec("cat /proc/net/snmp").stdout).unwrap();
    let icmp: Vec<&str> = text.lines().filter(|l| l.starts_with("Icmp:")).collect();
    let names: Vec<&str> = icmp[0].split_whitespace().collect();
    let values: Vec<&str> = icmp[1].split_whitespace().collect();
    let i = names.iter().position(|n| *n == "InEchos").unwrap();
    values[i].parse().unwrap()
}

/// The step kinds of a `reload --print` plan, in order, consecutive repeats merged. `old` are
/// the peers on the device before (their lines are updates; others are new peers).
fn plan_kinds(plan: &str, iface: &str, old: &BTreeSet<String>) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = Vec::new();
    let wg = format!("wg set {iface} ");
    for line in plan.lines() {
        let kind = if let Some(rest) = line.strip_prefix(&wg) {
            if rest.starts_with("private-key ") {
                "key rotate"
            } else if let Some(peer) = rest.strip_prefix("peer ") {
                let key = peer.split(' ').next().unwrap();
                if peer.ends_with(" remove") {
                    "peer remove"
                } else if old.contains(key) {
                    "peer update"
                } else {
                    "peer set"
                }
            } else {
                "device set"
            }
        } else if line.starts_with(&format!("ip link set dev {iface} mtu ")) {
            "mtu"
        } else if line.starts_with("ip address add ") {
            "addresses"
        } else if line.starts_with("ip address del ") {
            "addresses remove"
        } else if line.starts_with("ip route replace ") {
            "route"
        } else if line.starts_with("ip route del ") {
            "route remove"
        } else {
            panic!("a plan line of no known step: {line}\n{plan}");
        };
        if kinds.last() != Some(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

// ---------------------------------------------------------------------------------------------
// 1. A live reload loses nothing.

fn live_reload(implementation: &str) {
    let test = format!("live reload on {implementation}");
    if !real_environment(&test) {
        return;
    }
    let backend = match implementation {
        "boringtun-cli" => match boringtun(&test) {
            Some(p) => format!("backend: Userspace, userspace_implementation: \"{p}\""),
            None => return,
        },
        _ => String::new(),
    };
    // boringtun-cli reports neither its own key nor handshake times: B's side tells.
    let boring = implementation == "boringtun-cli";
    let two = TwoHosts::new();
    let (pair, keys, ia, ib) = (&two.pair, &two.keys, &two.ia, &two.ib);
    let ka = keys.private("a");
    let kb = keys.private("b");

    // B: a real peer (wireguard-go), brought up by wg-exec in its own namespace.
    let mut b = Spec::new(&["192.0.2.2/24"], &kb);
    b.listen_port = Some(51821);
    b.peers.push(P::new("a", &ka.1, &["192.0.2.1/32"]));
    let cb = keys.dir.path().join("b.ron");
    b.write(&cb);
    ok(run(
        &pair.b,
        "",
        &format!("up {ib} --config {}", cb.display()),
    ));

    // A: B, and two peers without a host: p2 goes, p3's endpoint and keepalive change.
    let mut old = Spec::new(&["192.0.2.1/24", "2001:db8:1::1/64"], &ka);
    old.listen_port = Some(51820);
    old.mtu = Some(1420);
    old.extra = backend;
    // (p2, without a keepalive, comes first: boringtun-cli gives a peer the keepalive of the
    // one before it in the same request, see boringtun_peers_get_only_their_own_settings.)
    old.peers = vec![
        P::new(
            "p2",
            &fake_key(2, 0),
            &["198.51.100.2/32", "2001:db8:2::/48"],
        )
        .endpoint("203.0.113.50:51820"),
        P::new("b", &kb.1, &["192.0.2.2/32"])
            .endpoint("203.0.113.2:51821")
            .keepalive(25),
        P::new("p3", &fake_key(3, 0), &["198.51.100.3/32"])
            .endpoint("203.0.113.51:51820")
            .keepalive(25),
    ];
    // The new configuration: p4 comes, p2 goes, p3 moves, an address more, a smaller MTU.
    let mut new = old.clone();
    new.ips.push("198.18.5.1/24".into());
    new.mtu = Some(1380);
    new.peers.retain(|p| p.name.as_deref() != Some("p2"));
    let p3 = new.peer_mut("p3");
    p3.endpoint = Some("203.0.113.52:51821".into());
    p3.keepalive = Some(15);
    new.peers.push(
        P::new(
            "p4",
            &fake_key(4, 0),
            &["198.51.100.4/32", "2001:db8:4::/48"],
        )
        .endpoint("203.0.113.53:51820"),
    );

    let ca = keys.dir.path().join("a.ron");
    old.write(&ca);
    ok(run(
        &pair.a,
        "",
        &format!("up {ia} --config {}", ca.display()),
    ));
    assert_matches(&pair.a, ia, &old, !boring, &format!("{test}: after up"));
    assert!(
        pair.a.ping("192.0.2.2"),
        "{test}: A -> B through the tunnel"
    );

    // A ping to B runs throughout; the reload happens in its middle.
    let mut ping = Ping::start(&pair.a, "192.0.2.2", "0.02", 150);
    ping.replies(50);
    let (a0, b0) = (Dump::of(&pair.a, ia), Dump::of(&pair.b, ib));
    new.write(&ca);
    let out = run(
        &pair.a,
        "",
        &format!("-v reload {ia} --config {}", ca.display()),
    );
    let (a1, b1) = (Dump::of(&pair.a, ia), Dump::of(&pair.b, ib));
    assert!(ping.running(), "{test}: the reload ran while the ping did");
    let log = ok(out);
    let (sent, received, said) = ping.finish();
    assert_eq!(
        (sent, received),
        (150, 150),
        "{test}: no packet lost: {said}"
    );
    assert!(said.contains(" 0% packet loss"), "{test}: {said}");

    // B's session went on: the handshake is the same one, the counters only grew.
    let (ra0, ra1) = (a0.row(&kb.1), a1.row(&kb.1));
    let (rb0, rb1) = (b0.row(&ka.1), b1.row(&ka.1));
    assert_ne!(rb0.handshake, 0, "{test}: B saw a handshake");
    assert_eq!(
        rb1.handshake, rb0.handshake,
        "{test}: B's view: no new handshake"
    );
    if !boring {
        assert_ne!(ra0.handshake, 0, "{test}: A saw a handshake");
        assert_eq!(
            ra1.handshake, ra0.handshake,
            "{test}: A's view: no new handshake"
        );
    }
    for (what, before, after) in [
        ("A's rx from B", ra0.rx, ra1.rx),
        ("A's tx to B", ra0.tx, ra1.tx),
        ("B's rx from A", rb0.rx, rb1.rx),
        ("B's tx to A", rb0.tx, rb1.tx),
    ] {
        assert!(before > 0, "{test}: {what} counted the ping");
        assert!(
            after >= before,
            "{test}: {what} went from {before} to {after}"
        );
    }

    // Exactly the new configuration.
    assert_matches(&pair.a, ia, &new, !boring, &format!("{test}: after reload"));
    let restarts = |name: &str| {
        format!("peer {name}: the userspace implementation cannot update a peer in place; it is removed and added again, and its session restarts")
    };
    if boring {
        assert!(
            log.contains(&restarts("p3")),
            "{test}: p3's restart is said: {log}"
        );
    } else {
        assert!(!log.contains("session restarts"), "{test}: {log}");
    }
    assert!(
        !log.contains(&restarts("b")),
        "{test}: B is not touched: {log}"
    );

    // The same configuration again: nothing to print, nothing changes.
    let out = run(
        &pair.a,
        "",
        &format!("reload {ia} --config {} --print", ca.display()),
    );
    assert!(out.status.success(), "{test}: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "",
        "{test}: a second reload has nothing to do"
    );
    let (dump, snap) = (Dump::of(&pair.a, ia), pair.a.snapshot());
    ok(run(
        &pair.a,
        "",
        &format!("reload {ia} --config {}", ca.display()),
    ));
    let again = Dump::of(&pair.a, ia);
    assert_eq!(
        again.stable(),
        dump.stable(),
        "{test}: a second reload changed the device"
    );
    assert_eq!(
        pair.a.snapshot(),
        snap,
        "{test}: a second reload changed the namespace"
    );
    let hb = Dump::of(&pair.b, ib);
    assert_eq!(
        hb.row(&ka.1).handshake,
        rb0.handshake,
        "{test}: still the same session"
    );

    ok(run(
        &pair.a,
        "",
        &format!("down {ia} --config {}", ca.display()),
    ));
    ok(run(
        &pair.b,
        "",
        &format!("down {ib} --config {}", cb.display()),
    ));
}

#[test]
fn live_reload_loses_nothing_on_wireguard_go() {
    live_reload("wireguard-go");
}

#[test]
fn live_reload_loses_nothing_on_boringtun() {
    live_reload("boringtun-cli");
}

/// boringtun-cli 0.7.1 carries a peer's preshared key, endpoint and keepalive over to the next
/// peer of the same `set` request (its api_set_peer resets only the allowed IPs per peer), so
/// each peer must reach it in a request of its own, or with every attribute spelled out.
#[test]
fn boringtun_peers_get_only_their_own_settings() {
    let test = "boringtun peers' own settings";
    if !real_environment(test) {
        return;
    }
    let Some(program) = boringtun(test) else {
        return;
    };
    let h = Host::new("o");
    let (a, keys, ia) = (&h.ns, &h.keys, &h.ia);
    let (psk, _) = keys.psk("full");
    let mut spec = Spec::new(&["192.0.2.1/24"], &keys.private("a"));
    spec.listen_port = Some(51820);
    spec.extra = format!("backend: Userspace, userspace_implementation: \"{program}\"");
    let full = P::new("full", &fake_key(0x40, 0), &["198.18.40.0/24"])
        .endpoint("203.0.113.40:51820")
        .keepalive(25)
        .extra(format!("preshared_key_file: \"{}\"", psk.display()));
    let bare = P::new("bare", &fake_key(0x40, 1), &["198.18.41.0/24"]);
    // What the bare peer got that it should not have, after each step (all are reported).
    let bare_problem = |what: &str| -> Option<String> {
        let d = Dump::of(a, ia);
        assert_ne!(d.row(&full.key).psk, "(none)", "{what}: full has its psk");
        let r = d.row(&bare.key);
        let got = (r.psk.as_str(), r.endpoint.as_str(), r.keepalive.as_str());
        (got != ("(none)", "(none)", "off")).then(|| {
            format!("{what}: the peer without a preshared key, endpoint and keepalive got {r:?}")
        })
    };
    let mut problems = Vec::new();
    let cfg = keys.dir.path().join("a.ron");
    let op = |op: &str| format!("{op} {ia} --config {}", cfg.display());
    // Up with the bare peer first (nothing before it to inherit from).
    spec.peers = vec![bare.clone(), full.clone()];
    spec.write(&cfg);
    ok(run(a, "", &op("up")));
    problems.extend(bare_problem("after up, the bare peer first"));
    // A reload that changes both, the full one listed first: boringtun-cli gets both again.
    spec.peers = vec![
        full.clone().endpoint("203.0.113.41:51820"),
        bare.clone().ips(&["198.18.41.0/24", "198.18.42.0/24"]),
    ];
    spec.write(&cfg);
    ok(run(a, "", &op("reload")));
    problems.extend(bare_problem(
        "after a reload that changed both, the full peer first",
    ));
    ok(run(a, "", &op("down")));
    // Up with the full peer first.
    ok(run(a, "", &op("up")));
    problems.extend(bare_problem("after up, the full peer first"));
    ok(run(a, "", &op("down")));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 2. A failure at every step kind of a reload.

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features wg-exec/fault-injection"
)]
fn a_fault_at_every_step_kind_of_a_reload_leaves_the_interface_as_it_was() {
    let test = "reload faults";
    if !real_environment(test) {
        return;
    }
    let h = Host::new("f");
    let (a, keys, ia) = (&h.ns, &h.keys, &h.ia);
    let (psk, _) = keys.psk("gains");
    let mut old = Spec::new(
        &["192.0.2.1/24", "2001:db8:1::1/64", "198.51.100.1/24"],
        &keys.private("a"),
    );
    old.listen_port = Some(51820);
    old.mtu = Some(1420);
    old.peers = vec![
        P::new("gains", &fake_key(10, 0), &["198.18.10.0/24"])
            .endpoint("203.0.113.10:51820")
            .extra(format!("preshared_key_file: \"{}\"", psk.display())),
        P::new(
            "loses",
            &fake_key(10, 1),
            &["198.18.20.0/24", "198.18.21.0/24"],
        )
        .keepalive(25),
        P::new(
            "goes",
            &fake_key(10, 2),
            &["198.18.30.0/24", "2001:db8:30::/48"],
        )
        .endpoint("203.0.113.30:51820")
        .keepalive(15),
        P::new("stays", &fake_key(10, 3), &["198.18.40.0/24"]).endpoint("203.0.113.40:51820"),
    ];
    // Every kind of change: port and fwmark, MTU, an address in and one out, a peer in, one
    // out, one that gains (allowed IP and endpoint), one that loses, the private key.
    let mut new = old.clone();
    new.ips = vec![
        "192.0.2.1/24".into(),
        "2001:db8:1::1/64".into(),
        "203.0.113.77/24".into(),
    ];
    let k2 = keys.private("a2");
    new.key_file = k2.0.clone();
    new.public = k2.1.clone();
    new.listen_port = Some(51821);
    new.mtu = Some(1380);
    new.fwmark = Some(0x33);
    let gains = new.peer_mut("gains");
    gains.ips.push("198.18.11.0/24".into());
    gains.endpoint = Some("203.0.113.11:51821".into());
    new.peer_mut("loses").ips = vec!["198.18.20.0/24".into()];
    new.peers.retain(|p| p.name.as_deref() != Some("goes"));
    new.peers.push(
        P::new("comes", &fake_key(10, 4), &["198.18.50.0/24"]).endpoint("203.0.113.50:51820"),
    );

    let cfg = keys.dir.path().join("a.ron");
    old.write(&cfg);
    ok(wg_exec_in(a, "", "up", ia, &cfg));
    assert_matches(a, ia, &old, true, "after up");
    let (dump, snap) = (Dump::of(a, ia).stable(), a.snapshot());
    let as_before = |what: &str| {
        assert_eq!(Dump::of(a, ia).stable(), dump, "{what}: the device");
        assert_eq!(a.snapshot(), snap, "{what}: the namespace");
        assert!(
            !next_record(ia).exists(),
            "{what}: the record being applied is left"
        );
    };

    new.write(&cfg);
    let out = run(
        a,
        "",
        &format!("reload {ia} --config {} --print", cfg.display()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    let on_device: BTreeSet<String> = old.peers.iter().map(|p| p.key.clone()).collect();
    let kinds = plan_kinds(&plan, ia, &on_device);
    assert_eq!(
        kinds,
        [
            "device set",
            "addresses",
            "peer set",
            "peer update",
            "route",
            "peer update",
            "peer remove",
            "route remove",
            "addresses remove",
            // A smaller MTU goes after the removals (src/reload.rs).
            "mtu",
            "key rotate"
        ],
        "the plan, in the order of src/reload.rs:\n{plan}"
    );
    as_before("after --print");
    let distinct: BTreeSet<&str> = kinds.iter().copied().collect();
    assert_eq!(distinct.len(), 10);
    for kind in &distinct {
        let out = run(
            a,
            &format!("WG_EXEC_FAULT='{kind}'"),
            &format!("reload {ia} --config {}", cfg.display()),
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{kind}: {err}");
        assert!(
            err.contains(&format!("failed at step '{kind}'")),
            "{kind}: {err}"
        );
        assert!(err.contains("injected fault"), "{kind}: {err}");
        as_before(&format!("a fault at {kind}"));
    }

    // Stopped after the last step (the private key is new by then): everything is undone,
    // the key too.
    let mut child = spawn_in(
        a,
        &[("WG_EXEC_PAUSE", "after:key rotate")],
        &["reload", ia, "--config", cfg.to_str().unwrap()],
    );
    wait_for_pause(&mut child);
    assert_eq!(
        Dump::of(a, ia).public,
        k2.1,
        "the new key is in while paused"
    );
    must(&format!("kill -TERM {}", child.id()));
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("interrupted by a signal; rolled back: key rotate"),
        "{err}"
    );
    as_before("SIGTERM after the key rotation");

    // And the real reload.
    ok(wg_exec_in(a, "", "reload", ia, &cfg));
    assert_matches(a, ia, &new, true, "after the reload");
    ok(wg_exec_in(a, "", "down", ia, &cfg));
}

// ---------------------------------------------------------------------------------------------
// 3. SIGKILL in the middle of a reload of 2,000 changed peers.

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features wg-exec/fault-injection"
)]
fn sigkill_in_the_middle_of_a_reload_of_2000_peers_is_finished_by_the_next_reload() {
    let test = "reload SIGKILL";
    if !real_environment(test) {
        return;
    }
    let h = Host::new("k");
    let (a, keys, ia) = (&h.ns, &h.keys, &h.ia);
    let before = a.snapshot();
    let mut old = Spec::new(&["192.0.2.1/24", "2001:db8:1::1/64"], &keys.private("a"));
    old.listen_port = Some(51820);
    old.peers = (0..2000u32)
        .map(|i| {
            P::new(
                "",
                &fake_key(0x71, i),
                &[&format!("198.18.{}.{}/32", i / 256, i % 256)],
            )
            .endpoint(&format!("203.0.113.{}:51820", i % 250 + 1))
        })
        .collect();
    // Every peer changes: the first 1,000 go and 1,000 others come, the other 1,000 each gain
    // an allowed IP.
    let mut new = old.clone();
    new.peers = (0..1000u32)
        .map(|j| {
            P::new(
                "",
                &fake_key(0x72, j),
                &[&format!("198.19.{}.{}/32", j / 256, j % 256)],
            )
            .endpoint(&format!("203.0.113.{}:51821", j % 250 + 1))
        })
        .chain(old.peers[1000..].iter().enumerate().map(|(n, p)| {
            let mut p = p.clone();
            p.ips.push(format!("2001:db8:5::{n:x}/128"));
            p
        }))
        .collect();
    let cfg = keys.dir.path().join("a.ron");
    let on_device: BTreeSet<String> = old.peers.iter().map(|p| p.key.clone()).collect();
    let reload = format!("reload {ia} --config {}", cfg.display());

    // Killed after the peers came and changed (routes and removals still to do), and killed
    // before the old routes go (the new record no longer has them).
    for (pause, peers_then) in [("after:peer update", 3000), ("route remove", 2000)] {
        let what = format!("{test} at {pause}");
        old.write(&cfg);
        ok(wg_exec_in(a, "", "up", ia, &cfg));
        new.write(&cfg);
        let out = run(a, "", &format!("{reload} --print"));
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        let plan = text(&out.stdout);
        assert_eq!(
            plan_kinds(&plan, ia, &on_device),
            [
                "peer set",
                "peer update",
                "route",
                "peer remove",
                "route remove"
            ],
            "{what}"
        );
        assert_eq!(plan.lines().count(), 1000 * 6, "{what}: the plan's size");

        let mut child = spawn_in(
            a,
            &[("WG_EXEC_PAUSE", pause)],
            &["reload", ia, "--config", cfg.to_str().unwrap()],
        );
        wait_for_pause(&mut child);
        kill9(&mut child);
        // Really in the middle.
        assert_eq!(Dump::of(a, ia).peers.len(), peers_then, "{what}");

        let log = ok(run(a, "", &format!("-v {reload}")));
        assert!(log.contains("reloaded"), "{what}: {log}");
        assert_matches(a, ia, &new, true, &format!("{what}: after the next reload"));
        assert!(
            !next_record(ia).exists(),
            "{what}: the record being applied is left"
        );

        ok(wg_exec_in(a, "", "down", ia, &cfg));
        assert_eq!(a.snapshot(), before, "{what}: the namespace after down");
        assert!(!a.has_link(ia), "{what}: the link");
        assert!(!socket_exists(ia), "{what}: the UAPI socket");
        assert_eq!(wireguard_go_processes(ia), 0, "{what}: wireguard-go");
        assert!(
            !Path::new(&journal_path(ia)).exists(),
            "{what}: the journal"
        );
        assert_eq!(applied_files(ia), Vec::<PathBuf>::new(), "{what}: records");
        assert!(
            !Path::new(&format!("{STATE_DIR}/{ia}.lock")).exists(),
            "{what}: the lock"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. A prefix moving from one peer to another is never unrouted.

/// Who owns `prefix` on the device, by `wg show allowed-ips` (parsed from its text).
fn owners(text: &str, prefix: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.split_whitespace().skip(1).any(|ip| ip == prefix))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// Samples `wg show IFACE allowed-ips` in `ns` as fast as it goes until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Sampler {
    fn start(ns: &Netns, iface: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let cmd = format!("ip netns exec {} wg show {iface} allowed-ips", ns.name);
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                samples.push(must(&cmd));
            }
            samples
        });
        Sampler { stop, thread }
    }

    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features wg-exec/fault-injection"
)]
fn a_prefix_moving_from_one_peer_to_another_is_never_unrouted() {
    let test = "prefix move";
    if !real_environment(test) {
        return;
    }
    // A and B joined over 203.0.113.0/24, A and C over 198.51.100.0/24.
    let pair = Pair::new();
    let (a, b) = (&pair.a, &pair.b);
    let c = Netns::new("c");
    let (va, vc) = (format!("v{}", unique()), format!("v{}", unique()));
    must(&format!(
        "ip -n {} link add {va} type veth peer name {vc} netns {}",
        a.name, c.name
    ));
    a.ip(&format!("address add 198.51.100.1/24 dev {va}"));
    c.ip(&format!("address add 198.51.100.3/24 dev {vc}"));
    a.ip(&format!("link set {va} up"));
    c.ip(&format!("link set {vc} up"));

    let keys = Keys::new();
    let (ia, ib, ic) = (iface("a"), iface("b"), iface("c"));
    let _g = (
        SocketGuard(ia.clone()),
        SocketGuard(ib.clone()),
        SocketGuard(ic.clone()),
    );
    let (ka, kb, kc) = (keys.private("a"), keys.private("b"), keys.private("c"));
    // B and C both answer at 198.18.77.1.
    for (ns, name, k, ip, port) in [
        (b, &ib, &kb, "192.0.2.2/24", 51821),
        (&c, &ic, &kc, "192.0.2.3/24", 51822),
    ] {
        let mut s = Spec::new(&[ip, "198.18.77.1/32"], k);
        s.listen_port = Some(port);
        s.peers = vec![P::new("a", &ka.1, &["192.0.2.1/32"])];
        let f = keys.dir.path().join(format!("{name}.ron"));
        s.write(&f);
        ok(run(ns, "", &format!("up {name} --config {}", f.display())));
    }
    let mut old = Spec::new(&["192.0.2.1/24"], &ka);
    old.listen_port = Some(51820);
    old.peers = vec![
        P::new("b", &kb.1, &["192.0.2.2/32", "198.18.77.0/24"])
            .endpoint("203.0.113.2:51821")
            .keepalive(25),
        P::new("c", &kc.1, &["192.0.2.3/32"])
            .endpoint("198.51.100.3:51822")
            .keepalive(25),
    ];
    let mut new = old.clone();
    new.peer_mut("b").ips = vec!["192.0.2.2/32".into()];
    new.peer_mut("c").ips = vec!["192.0.2.3/32".into(), "198.18.77.0/24".into()];
    let cfg = keys.dir.path().join("a.ron");
    old.write(&cfg);
    ok(run(a, "", &format!("up {ia} --config {}", cfg.display())));
    assert!(a.ping("192.0.2.2"), "a session with B");
    assert!(a.ping("192.0.2.3"), "a session with C");
    let echos = || (echo_requests_received(b), echo_requests_received(&c));
    let (eb, ec) = echos();
    assert!(a.ping("198.18.77.1"), "198.18.77.1 answers");
    let (eb1, ec1) = echos();
    assert!(eb1 > eb && ec1 == ec, "B answers 198.18.77.1 first");
    let reload = format!("reload {ia} --config {}", cfg.display());

    // (a) The gaining peer is updated first, then the losing one; paused in between, the prefix
    // is C's already and traffic goes there.
    new.write(&cfg);
    let out = run(a, "", &format!("{reload} --print"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "wg set {ia} peer {} allowed-ips +198.18.77.0/24\nwg set {ia} peer {} allowed-ips 192.0.2.2/32\n",
            kc.1, kb.1
        ),
        "the plan: C gains, then B loses"
    );
    let show = || must(&format!("{} wg show {ia} allowed-ips", in_ns(a)));
    let mut child = spawn_in(
        a,
        &[("WG_EXEC_PAUSE", "after:peer update")],
        &["reload", &ia, "--config", cfg.to_str().unwrap()],
    );
    let said = wait_for_pause(&mut child);
    assert!(said.contains("after peer update"), "{said}");
    let now = show();
    assert_eq!(
        owners(&now, "198.18.77.0/24"),
        std::slice::from_ref(&kc.1),
        "paused: {now}"
    );
    let (eb, ec) = echos();
    assert!(a.ping("198.18.77.1"), "198.18.77.1 answers while paused");
    let (eb1, ec1) = echos();
    assert!(eb1 == eb && ec1 > ec, "C answers 198.18.77.1 while paused");
    // A signal would roll the paused reload back: kill it, the next reload finishes.
    kill9(&mut child);
    ok(run(a, "", &reload));
    assert_matches(a, &ia, &new, true, "after the killed reload was finished");
    // (Checked at the end, so that a failure here does not hide the traffic checks.)
    let left_behind = next_record(&ia).exists().then(|| applied_files(&ia));

    // (b) Under traffic (a ping every millisecond), both ways: every echo request reaches B or C
    // while the prefix moves, and `wg show` never sees it ownerless (or owned twice).
    for (spec, to) in [(&old, "B"), (&new, "C")] {
        spec.write(&cfg);
        let (eb, ec) = echos();
        let sampler = Sampler::start(a, &ia);
        let mut ping = Ping::start(a, "198.18.77.1", "0.001", 1000);
        ping.replies(100);
        let out = run(a, "", &reload);
        let running = ping.running();
        let (sent, received, said) = ping.finish();
        let samples = sampler.finish();
        ok(out);
        assert!(running, "to {to}: the reload ran while the ping did");
        let (eb1, ec1) = echos();
        assert_eq!(sent, 1000, "to {to}: {said}");
        assert_eq!(
            (eb1 - eb) + (ec1 - ec),
            sent,
            "to {to}: echo requests that reached B ({}) or C ({}): {said}",
            eb1 - eb,
            ec1 - ec
        );
        assert!(eb1 > eb && ec1 > ec, "to {to}: both answered in turn");
        // A reply in flight when the prefix moves comes from the old owner, whose source A no
        // longer accepts (cryptokey routing): only those may be missing, at most as many as
        // requests go out in the longest round trip.
        let max_rtt: f64 = said
            .lines()
            .find_map(|l| l.strip_prefix("rtt min/avg/max/mdev = "))
            .and_then(|v| v.split('/').nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("to {to}: no round trip times: {said}"));
        let in_flight = max_rtt.ceil() as u64 + 1;
        assert!(
            sent - received <= in_flight.max(2),
            "to {to}: {} replies lost, at most {in_flight} were in flight: {said}",
            sent - received
        );
        assert!(!samples.is_empty(), "to {to}: the sampler ran");
        for s in &samples {
            assert_eq!(owners(s, "198.18.77.0/24").len(), 1, "to {to}: {s}");
        }
        assert_matches(a, &ia, spec, true, &format!("moved to {to}"));
    }
    assert_eq!(
        left_behind, None,
        "the reload that finished the killed one left the killed one's record behind"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. status.

/// `wg-exec status` of one interface, text and JSON, with everything it ever said kept for the
/// check that no secret appears.
struct Status<'a> {
    ns: &'a Netns,
    iface: String,
    cfg: PathBuf,
    said: Vec<String>,
}

impl Status<'_> {
    /// Runs both forms; returns the exit code, the text and the JSON (Null when none).
    fn get(&mut self, what: &str) -> (Option<i32>, String, Value) {
        let args = format!("status {} --config {}", self.iface, self.cfg.display());
        let t = run(self.ns, "", &args);
        let j = run(self.ns, "", &format!("{args} --json"));
        for o in [&t, &j] {
            self.said.push(text(&o.stdout));
            self.said.push(text(&o.stderr));
        }
        assert_eq!(
            t.status.code(),
            j.status.code(),
            "{what}: text and JSON agree: {}{}",
            text(&t.stderr),
            text(&j.stderr)
        );
        let json = match j.stdout.is_empty() {
            true => Value::Null,
            false => serde_json::from_slice(&j.stdout).unwrap_or_else(|e| {
                panic!("{what}: --json does not parse ({e}): {}", text(&j.stdout))
            }),
        };
        (t.status.code(), text(&t.stdout), json)
    }

    fn in_sync(&mut self, what: &str) -> (String, Value) {
        let (code, out, json) = self.get(what);
        assert_eq!(code, Some(0), "{what}: exit 0 in sync: {out}");
        assert_eq!(out.lines().last(), Some("in sync"), "{what}: {out}");
        assert_eq!(json["state"], "in sync", "{what}: {json}");
        assert_eq!(json["drift"], serde_json::json!([]), "{what}: {json}");
        (out, json)
    }

    /// Drifted, with a line (text and JSON) that contains `line`.
    fn drifted(&mut self, what: &str, line: &str) {
        let (code, out, json) = self.get(what);
        assert_eq!(code, Some(1), "{what}: exit 1 when drifted: {out}");
        assert!(out.contains("\ndrifted ("), "{what}: {out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("  - ") && l.contains(line)),
            "{what}: no line says `{line}`: {out}"
        );
        assert_eq!(json["state"], "drifted", "{what}: {json}");
        assert!(
            json["drift"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d.as_str().unwrap().contains(line)),
            "{what}: no drift entry says `{line}`: {json}"
        );
    }
}

#[test]
fn status_tells_each_kind_of_drift_from_what_is_not_drift() {
    let test = "status";
    if !real_environment(test) {
        return;
    }
    let pair = Pair::new();
    let (a, b) = (&pair.a, &pair.b);
    let keys = Keys::new();
    let (ia, ib) = (iface("a"), iface("b"));
    let _g = (SocketGuard(ia.clone()), SocketGuard(ib.clone()));
    let (ka, kb) = (keys.private("a"), keys.private("b"));
    let (psk, psk_text) = keys.psk("ab");
    let private = std::fs::read_to_string(&ka.0).unwrap().trim().to_string();
    let hex = |b64: &str| wg_exec_steps::Key::from_base64(b64, true).unwrap().to_hex();
    let secrets = [
        private.clone(),
        hex(&private),
        psk_text.clone(),
        hex(&psk_text),
    ];
    let with_psk = format!("preshared_key_file: \"{}\"", psk.display());

    let mut sb = Spec::new(&["192.0.2.2/24"], &kb);
    sb.listen_port = Some(51821);
    sb.peers = vec![P::new("a", &ka.1, &["192.0.2.1/32"]).extra(with_psk.clone())];
    let cb = keys.dir.path().join("b.ron");
    sb.write(&cb);
    ok(run(b, "", &format!("up {ib} --config {}", cb.display())));

    // A: no listen_port (the kernel chooses), an MTU, B with a preshared key, a peer p2.
    let mut sa = Spec::new(&["192.0.2.1/24", "2001:db8:1::1/64"], &ka);
    sa.mtu = Some(1400);
    let p2 = fake_key(5, 2);
    sa.peers = vec![
        P::new("b", &kb.1, &["192.0.2.2/32"])
            .endpoint("203.0.113.2:51821")
            .keepalive(25)
            .extra(with_psk),
        P::new("p2", &p2, &["198.51.100.2/32", "2001:db8:2::/48"]).endpoint("203.0.113.50:51820"),
    ];
    let cfg = keys.dir.path().join("a.ron");
    sa.write(&cfg);
    let mut st = Status {
        ns: a,
        iface: ia.clone(),
        cfg: cfg.clone(),
        said: Vec::new(),
    };
    let reload = format!("reload {ia} --config {}", cfg.display());

    // Not up: exit 3.
    let (code, _, _) = st.get("before up");
    assert_eq!(code, Some(3), "before up: {:?}", st.said);
    assert!(
        st.said.iter().any(|s| s.contains("it is not up")),
        "{:?}",
        st.said
    );

    ok(run(a, "", &format!("up {ia} --config {}", cfg.display())));
    assert!(a.ping("192.0.2.2"), "A -> B through the tunnel");
    let (out, json) = st.in_sync("after up");
    // The port the kernel chose is shown, and is no drift.
    let port = Dump::of(a, &ia).port;
    assert_ne!(port, "0");
    assert_eq!(json["listen_port"].to_string(), port, "{json}");
    assert!(out.contains(&format!("listen port: {port}\n")), "{out}");
    assert_eq!(json["interface"], ia.as_str());
    assert_eq!(json["public_key"], ka.1.as_str());
    assert_eq!(json["mtu"], 1400);
    assert_eq!(json["link_up"], true);
    assert_eq!(json["peers"].as_array().unwrap().len(), 2, "{json}");
    let peer_b = |json: &Value| {
        json["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "b")
            .cloned()
            .unwrap_or_else(|| panic!("no peer b: {json}"))
    };
    assert_eq!(peer_b(&json)["has_preshared_key"], true);
    assert_ne!(peer_b(&json)["latest_handshake_seconds_ago"], Value::Null);

    // B roams: it reaches A from another port. Shown, not drift.
    must(&format!("{} wg set {ib} listen-port 51899", in_ns(b)));
    assert!(b.ping("192.0.2.1"), "B -> A from its new port");
    poll("A to learn B's new endpoint", || {
        Dump::of(a, &ia).row(&kb.1).endpoint == "203.0.113.2:51899"
    });
    let (out, json) = st.in_sync("a roamed endpoint");
    assert!(
        out.contains("  endpoint: 203.0.113.2:51899 (configured 203.0.113.2:51821)\n"),
        "{out}"
    );
    assert_eq!(peer_b(&json)["endpoint"], "203.0.113.2:51899");
    assert_eq!(peer_b(&json)["configured_endpoint"], "203.0.113.2:51821");

    // The configuration edited: what a reload would run. The reload leaves B's roamed
    // endpoint alone.
    sa.peer_mut("p2").endpoint = Some("203.0.113.60:51820".into());
    sa.write(&cfg);
    st.drifted(
        "the configuration edited",
        &format!("a reload would run: wg set {ia} peer {p2} endpoint 203.0.113.60:51820"),
    );
    ok(run(a, "", &reload));
    st.in_sync("after the reload of the edited configuration");
    assert_eq!(Dump::of(a, &ia).row(&kb.1).endpoint, "203.0.113.2:51899");

    // Each kind of drift by hand, and its fix.
    let wg = |args: &str| must(&format!("{} wg set {ia} {args}", in_ns(a)));
    wg(&format!("peer {p2} remove"));
    st.drifted(
        "a peer removed",
        &format!("peer p2 ({p2}) is missing from the device"),
    );
    ok(run(a, "", &reload));
    st.in_sync("after the reload that put the peer back");

    let stranger = fake_key(5, 99);
    wg(&format!("peer {stranger} allowed-ips 198.51.100.99/32"));
    st.drifted(
        "a peer added by hand",
        &format!("peer {stranger} is on the device but was not applied by wg-exec"),
    );
    wg(&format!("peer {stranger} remove"));
    st.in_sync("after the peer added by hand was removed by hand");

    a.ip(&format!("route del 198.51.100.2/32 dev {ia}"));
    st.drifted(
        "a route deleted",
        "route 198.51.100.2/32 table 254 is missing",
    );
    ok(run(a, "", &reload));
    st.in_sync("after the reload that put the route back");

    a.ip(&format!("route add 198.51.100.77/32 dev {ia}"));
    st.drifted(
        "a route added by hand",
        "route 198.51.100.77/32 table 254 goes through the interface but was not applied by wg-exec",
    );
    a.ip(&format!("route del 198.51.100.77/32 dev {ia}"));
    st.in_sync("after the route added by hand was deleted by hand");

    a.ip(&format!("link set dev {ia} mtu 1300"));
    st.drifted(
        "the MTU changed",
        "mtu is 1300 on the link, 1400 was applied",
    );
    a.ip(&format!("link set dev {ia} mtu 1400"));
    st.in_sync("after the MTU was set back by hand");

    a.ip(&format!("address del 2001:db8:1::1/64 dev {ia}"));
    st.drifted("an address removed", "address 2001:db8:1::1/64 is missing");
    ok(run(a, "", &reload));
    st.in_sync("after the reload that put the address back");

    a.ip(&format!("link set dev {ia} down"));
    st.drifted("the link down", "the link is down");
    a.ip(&format!("link set dev {ia} up"));
    ok(run(a, "", &reload));
    st.in_sync("after the link was set up and reloaded");
    // Everything as configured, B's endpoint as it roamed.
    let mut roamed = sa.clone();
    roamed.peer_mut("b").endpoint = Some("203.0.113.2:51899".into());
    assert_matches(a, &ia, &roamed, true, "after every fix");

    ok(run(a, "", &format!("down {ia} --config {}", cfg.display())));
    let (code, _, _) = st.get("after down");
    assert_eq!(code, Some(3), "after down");

    for (i, s) in st.said.iter().enumerate() {
        for secret in &secrets {
            assert!(
                !s.contains(secret.as_str()),
                "a secret in status output {i}: {s}"
            );
        }
    }
    ok(run(b, "", &format!("down {ib} --config {}", cb.display())));
}

/// A reload killed after its last kernel step leaves the next reload nothing to send to the
/// device; that reload must still close the interrupted one (journal, records), or status keeps
/// reporting the edit as drift that no reload clears.
#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features wg-exec/fault-injection"
)]
fn a_killed_reload_finished_by_a_reload_with_nothing_left_to_do_leaves_status_in_sync() {
    let test = "killed reload, nothing left";
    if !real_environment(test) {
        return;
    }
    let h = Host::new("n");
    let (a, keys, ia) = (&h.ns, &h.keys, &h.ia);
    let mut spec = Spec::new(&["192.0.2.1/24"], &keys.private("a"));
    spec.listen_port = Some(51820);
    spec.peers =
        vec![P::new("p", &fake_key(6, 0), &["198.51.100.2/32"]).endpoint("203.0.113.2:51820")];
    let cfg = keys.dir.path().join("a.ron");
    spec.write(&cfg);
    ok(wg_exec_in(a, "", "up", ia, &cfg));
    // Only the endpoint changes: one step, a peer update.
    spec.peer_mut("p").endpoint = Some("203.0.113.3:51820".into());
    spec.write(&cfg);
    let mut child = spawn_in(
        a,
        &[("WG_EXEC_PAUSE", "after:peer update")],
        &["reload", ia, "--config", cfg.to_str().unwrap()],
    );
    wait_for_pause(&mut child);
    kill9(&mut child);
    assert_matches(a, ia, &spec, true, "after the kill");
    let out = wg_exec_in(a, "", "reload", ia, &cfg);
    ok(out);
    let mut st = Status {
        ns: a,
        iface: ia.clone(),
        cfg: cfg.clone(),
        said: Vec::new(),
    };
    st.in_sync("after the next reload");
    assert!(
        !next_record(ia).exists(),
        "the interrupted reload's record is left: {:?}",
        applied_files(ia)
    );
    let out = wg_exec_in(a, "", "up", ia, &cfg);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("it is already up") && !err.contains("interrupted"),
        "no reload is unfinished any more: {err}"
    );
    ok(wg_exec_in(a, "", "down", ia, &cfg));
}

// ---------------------------------------------------------------------------------------------
// Changes whose order matters to the kernel, and records a killed or undone reload must get
// right (each was a bug a review found: the reload reported success or "rolled back" and the
// interface was not as it said).

/// Up with `before`, reload to `after`; returns the reload's output.
fn up_then_reload(a: &Netns, ia: &str, cfg: &Path, before: &Spec, after: &Spec) -> Output {
    before.write(cfg);
    ok(run(a, "", &format!("up {ia} --config {}", cfg.display())));
    assert_matches(a, ia, before, true, "after up");
    after.write(cfg);
    run(a, "", &format!("reload {ia} --config {}", cfg.display()))
}

#[test]
fn address_changes_the_kernel_orders_are_applied_whole_or_refused() {
    let test = "address changes";
    if !real_environment(test) {
        return;
    }
    let keys = Keys::new();
    let peer = P::new(
        "p",
        &fake_key(7, 0),
        &["198.51.100.0/24", "2001:db8:6::/48"],
    );
    let mut base = Spec::new(&["198.18.0.1/24", "2001:db8:5::1/64"], &keys.private("a"));
    base.peers = vec![peer];
    base.mtu = Some(1420);

    // An IPv4 address swapped within its subnet: the kernel would take the new one (a
    // secondary) with the old primary, and every IPv4 route with the last address. Refused
    // before anything changes.
    let a = Netns::new("a");
    let ia = iface("r");
    let _g = SocketGuard(ia.clone());
    let cfg = keys.dir.path().join("swap.ron");
    let mut swapped = base.clone();
    swapped.ips[0] = "198.18.0.2/24".into();
    let out = up_then_reload(&a, &ia, &cfg, &base, &swapped);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("198.18.0.1/24 goes while 198.18.0.2/24 stays in its subnet")
            && err.contains("cannot change on a live interface"),
        "{err}"
    );
    assert_matches(&a, &ia, &base, true, "after the refused swap");
    // The last IPv4 address going while IPv4 routes stay: refused too.
    let mut v6_only = base.clone();
    v6_only.ips = vec!["2001:db8:5::1/64".into()];
    v6_only.write(&cfg);
    let out = wg_exec_in(&a, "", "reload", &ia, &cfg);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the last IPv4 address goes while IPv4 routes stay"),
        "{err}"
    );
    assert_matches(&a, &ia, &base, true, "after the refused removal");
    // Another subnet's address comes and this one goes: applied (no secondary is involved).
    let mut moved = base.clone();
    moved.ips[0] = "198.18.1.1/24".into();
    moved.write(&cfg);
    ok(wg_exec_in(&a, "", "reload", &ia, &cfg));
    assert_matches(&a, &ia, &moved, true, "after moving to another subnet");
    ok(wg_exec_in(&a, "", "down", &ia, &cfg));

    // An IPv6 address with another prefix length is the same address to the kernel: the old
    // one goes first, and the reload succeeds.
    let mut prefix = base.clone();
    prefix.ips[1] = "2001:db8:5::1/56".into();
    let out = up_then_reload(&a, &ia, &cfg, &base, &prefix);
    ok(out);
    assert_matches(&a, &ia, &prefix, true, "after the prefix change");
    ok(wg_exec_in(&a, "", "down", &ia, &cfg));

    // IPv6 dropped while the MTU goes under 1280 (which takes IPv6 off the link): the address
    // goes first, then the MTU.
    let mut small = base.clone();
    small.ips = vec!["198.18.0.1/24".into()];
    small.peers[0].ips = vec!["198.51.100.0/24".into()];
    small.mtu = Some(1200);
    let out = up_then_reload(&a, &ia, &cfg, &base, &small);
    ok(out);
    assert_matches(&a, &ia, &small, true, "after IPv6 went with the MTU");
    ok(wg_exec_in(&a, "", "down", &ia, &cfg));
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features wg-exec/fault-injection"
)]
fn a_rolled_back_reload_takes_back_an_endpoint_the_peer_did_not_have() {
    let test = "endpoint rollback";
    if !real_environment(test) {
        return;
    }
    let h = Host::new("e");
    let (a, keys, ia) = (&h.ns, &h.keys, &h.ia);
    let key = fake_key(8, 0);
    let mut before = Spec::new(&["198.18.0.1/24", "198.18.9.1/24"], &keys.private("a"));
    before.peers = vec![P::new("p", &key, &["198.51.100.0/24"])];
    let mut after = before.clone();
    after.ips = vec!["198.18.0.1/24".into()];
    after.peers[0].endpoint = Some("203.0.113.7:51820".into());
    let cfg = keys.dir.path().join("a.ron");
    before.write(&cfg);
    ok(wg_exec_in(a, "", "up", ia, &cfg));
    assert_eq!(Dump::of(a, ia).row(&key).endpoint, "(none)");
    after.write(&cfg);
    // The endpoint is set (a peer update), then the address removal fails.
    let out = wg_exec_in(a, "WG_EXEC_FAULT='addresses remove'", "reload", ia, &cfg);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("rolled back") && err.contains("peer update"),
        "{err}"
    );
    assert_eq!(
        Dump::of(a, ia).row(&key).endpoint,
        "(none)",
        "the rolled-back reload left the new endpoint"
    );
    assert_matches(a, ia, &before, true, "after the rollback");
    ok(wg_exec_in(a, "", "reload", ia, &cfg));
    assert_matches(a, ia, &after, true, "after the reload");
    ok(wg_exec_in(a, "", "down", ia, &cfg));
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features wg-exec/fault-injection"
)]
fn a_reload_killed_before_its_first_step_is_finished_by_the_next_one() {
    let test = "killed reload: endpoint, table, fwmark";
    if !real_environment(test) {
        return;
    }
    let h = Host::new("k");
    let (a, keys, ia) = (&h.ns, &h.keys, &h.ia);
    let key = fake_key(9, 0);
    let mut before = Spec::new(&["198.18.0.1/24"], &keys.private("a"));
    before.fwmark = Some(0x77);
    before.peers = vec![P::new("p", &key, &["198.51.100.0/24"]).endpoint("203.0.113.2:51820")];
    // Every change whose record the killed reload had already written: the endpoint, the
    // routes' table, the fwmark (cleared).
    let mut after = before.clone();
    after.fwmark = None;
    after.peers[0].endpoint = Some("203.0.113.3:51820".into());
    after.extra = "table: \"1234\"".into();
    let cfg = keys.dir.path().join("a.ron");
    before.write(&cfg);
    ok(wg_exec_in(a, "", "up", ia, &cfg));
    after.write(&cfg);
    let mut child = spawn_in(
        a,
        &[("WG_EXEC_PAUSE", "device set")],
        &["reload", ia, "--config", cfg.to_str().unwrap()],
    );
    wait_for_pause(&mut child);
    kill9(&mut child);
    assert!(
        next_record(ia).exists(),
        "the killed reload wrote its record"
    );
    assert_matches(a, ia, &before, true, "after the kill, nothing applied");
    ok(wg_exec_in(a, "", "reload", ia, &cfg));
    let d = Dump::of(a, ia);
    assert_eq!(d.fwmark, "off", "the fwmark is cleared");
    assert_eq!(
        d.row(&key).endpoint,
        "203.0.113.3:51820",
        "the new endpoint"
    );
    let main = a.ip(&format!("-4 route show table main dev {ia}"));
    assert!(
        !main.contains("198.51.100.0/24"),
        "the route in table main is removed: {main}"
    );
    let t = a.ip(&format!("-4 route show table 1234 dev {ia}"));
    assert!(
        t.contains("198.51.100.0/24"),
        "the route in table 1234: {t}"
    );
    assert!(!next_record(ia).exists());
    let out = wg_exec_in(a, "", "status", ia, &cfg);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    ok(wg_exec_in(a, "", "down", ia, &cfg));
}

#[test]
fn metric_0_and_ipv6_metric_1024_are_no_drift() {
    let test = "metric 0";
    if !real_environment(test) {
        return;
    }
    let a = Netns::new("a");
    let keys = Keys::new();
    for (i, metric) in ["0", "1024"].iter().enumerate() {
        let ia = iface(&format!("m{i}"));
        let _g = SocketGuard(ia.clone());
        let mut spec = Spec::new(&["198.18.0.1/24", "2001:db8:5::1/64"], &keys.private("a"));
        spec.peers = vec![P::new(
            "p",
            &fake_key(10, 0),
            &["198.51.100.0/24", "2001:db8:6::/48"],
        )];
        spec.extra = format!("metric: {metric}");
        let cfg = keys.dir.path().join(format!("{ia}.ron"));
        spec.write(&cfg);
        ok(wg_exec_in(&a, "", "up", &ia, &cfg));
        let out = wg_exec_in(&a, "", "status", &ia, &cfg);
        assert_eq!(
            out.status.code(),
            Some(0),
            "metric {metric}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let plan = run(
            &a,
            "",
            &format!("reload {ia} --print --config {}", cfg.display()),
        );
        assert_eq!(
            text(&plan.stdout),
            "",
            "metric {metric}: an unchanged reload sends nothing"
        );
        ok(wg_exec_in(&a, "", "down", &ia, &cfg));
    }
}

/// Status takes no lock, so it reads while no other wg-exec holds the interface's: what a
/// reload has half done is not drift. Another process holds the lock, as a reload would, and
/// adds an address meanwhile: a status started then waits, and reports in sync once the
/// address is gone again and the lock is free. A lock that stays held past the wait is "cannot tell" (4),
/// never drift. A status run by the holder itself (a hook) reads at once.
#[test]
fn status_waits_while_another_wg_exec_works_and_never_calls_that_drift() {
    let test = "status and a held lock";
    if !real_environment(test) {
        return;
    }
    let h = Host::new("w");
    let (a, keys, ia) = (&h.ns, &h.keys, &h.ia);
    let mut spec = Spec::new(&["198.18.0.1/24"], &keys.private("a"));
    spec.peers = vec![P::new("p", &fake_key(12, 0), &["198.51.100.0/24"])];
    let cfg = keys.dir.path().join("a.ron");
    spec.write(&cfg);
    ok(wg_exec_in(a, "", "up", ia, &cfg));
    let status_cmd = || {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &a.name,
                wg_exec_bin(),
                "status",
                ia,
                "--config",
            ])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let said = |out: &Output| format!("{}{}", text(&out.stdout), text(&out.stderr));
    // The change in progress: an address added (drift), then taken away again.
    let address = |verb: &str| {
        must(&format!(
            "{} ip address {verb} 198.18.1.99/32 dev {ia}",
            h.inside()
        ))
    };
    let lock = Path::new(&journal_path(ia)).with_file_name(format!("{ia}.lock"));
    // Another process holds the lock and names itself in it, as wg-exec does.
    let hold = || {
        let mut holder = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec 9>>{0}; flock -x 9; echo $$ > {0}; echo held; exec sleep 600",
                lock.display()
            ))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held");
        holder
    };
    let release = |mut holder: Child| {
        holder.kill().unwrap();
        holder.wait().unwrap();
    };
    // Work in progress: the lock held, an address added.
    let holder = hold();
    address("add");
    let mut status = status_cmd();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        status.try_wait().unwrap().is_none(),
        "{test}: status read while the lock was held"
    );
    // The work done: the address gone again, the lock free.
    address("del");
    release(holder);
    let out = status.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{test}: {}", said(&out));
    // Held for good: cannot tell, naming the holder.
    let holder = hold();
    let out = status_cmd().wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{test}: {}", said(&out));
    assert!(
        said(&out).contains(&format!("another wg-exec (pid {})", holder.id())),
        "{test}: {}",
        said(&out)
    );
    release(holder);
    // Held by status's own ancestor (this test, as wg-exec for its hooks): read at once.
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&lock)
        .unwrap();
    let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .unwrap();
    std::fs::write(&lock, std::process::id().to_string()).unwrap();
    address("add");
    let out = status_cmd().wait_with_output().unwrap();
    address("del");
    drop(held);
    assert_eq!(out.status.code(), Some(1), "{test}: {}", said(&out));
    assert!(
        said(&out).contains("198.18.1.99/32"),
        "{test}: {}",
        said(&out)
    );
    let out = status_cmd().wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{test}: {}", said(&out));
    ok(wg_exec_in(a, "", "down", ia, &cfg));
}

#[test]
fn status_that_cannot_tell_exits_4_never_1() {
    let test = "status cannot tell";
    if !real_environment(test) {
        return;
    }
    let h = Host::new("u");
    let (a, keys, ia) = (&h.ns, &h.keys, &h.ia);
    let mut spec = Spec::new(&["198.18.0.1/24"], &keys.private("a"));
    spec.peers = vec![P::new("p", &fake_key(11, 0), &["198.51.100.0/24"])];
    let cfg = keys.dir.path().join("a.ron");
    spec.write(&cfg);
    ok(wg_exec_in(a, "", "up", ia, &cfg));
    let record = Path::new(&journal_path(ia)).with_file_name(format!("{ia}.applied.json"));
    let kept = std::fs::read_to_string(&record).unwrap();
    // A garbled record, then none: status cannot tell, which is neither drift (1) nor down (3).
    for (what, garble) in [("garbled", true), ("missing", false)] {
        match garble {
            true => std::fs::write(&record, "{\"version\": 2, \"addr").unwrap(),
            false => std::fs::remove_file(&record).unwrap(),
        }
        let out = wg_exec_in(a, "", "status", ia, &cfg);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{what} record: {err}");
        assert!(
            err.contains(&format!("{ia}.applied.json")),
            "{what} record: {err}"
        );
    }
    std::fs::write(&record, kept).unwrap();
    let out = wg_exec_in(a, "", "status", ia, &cfg);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    ok(wg_exec_in(a, "", "down", ia, &cfg));
}
