//! Network namespaces owned by a test (dropped = their processes killed, the namespace
//! deleted): one host, two hosts joined by veth, and a namespace that plays PID 1's.

use super::poll::ping_within;
use super::shell::{must, sh, text, unique};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A network namespace owned by a test; dropped = its processes killed, the namespace deleted.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("wgt-{}-{tag}", unique());
        must(&format!("ip netns add {name}"));
        // The test's own namespace: no duplicate address detection, so that addresses and
        // routes settle at once and snapshots compare.
        must(&format!(
            "ip netns exec {name} sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0"
        ));
        must(&format!("ip -n {name} link set lo up"));
        Netns { name }
    }

    pub fn ip(&self, args: &str) -> String {
        must(&format!("ip -n {} {args}", self.name))
    }

    pub fn exec(&self, cmd: &str) -> Output {
        sh(&format!("ip netns exec {} {cmd}", self.name))
    }

    /// `wg show IFACE dump` in this namespace, as lines of tab-separated fields.
    pub fn wg_dump(&self, iface: &str) -> Vec<Vec<String>> {
        must(&format!("ip netns exec {} wg show {iface} dump", self.name))
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    pub fn has_link(&self, iface: &str) -> bool {
        sh(&format!("ip -n {} link show dev {iface}", self.name))
            .status
            .success()
    }

    /// Pings until one answer arrives (the first handshake may be lost and retried after 5 s).
    pub fn ping(&self, addr: &str) -> bool {
        ping_in(&self.name, addr)
    }

    /// Everything a test may compare before and after: links, addresses, routes of all tables
    /// and rules, as `ip` prints them (JSON, with counters and timers left out).
    pub fn snapshot(&self) -> String {
        snapshot_by(|what| self.ip(&format!("-j {what}")))
    }
}

/// What `Netns::snapshot` shows, with `ip` run by `ip(WHAT)` (`WHAT` such as `-4 rule show`,
/// for one namespace, in JSON): links, addresses, routes of all tables and rules, with
/// counters and timers left out.
pub fn snapshot_by(ip: impl Fn(&str) -> String) -> String {
    let mut s = String::new();
    for what in [
        "link show",
        "address show",
        "-4 route show table all",
        "-6 route show table all",
        "-4 rule show",
        "-6 rule show",
    ] {
        s.push_str(&format!("== {what}\n"));
        s.push_str(&strip_volatile(&ip(what)));
        s.push('\n');
    }
    s
}

/// Waits (at most 10 s) until IPv6 configured the link-local address and routes of `dev`;
/// `ip(ARGS)` runs `ip ARGS` in its namespace.
pub fn wait_ipv6(dev: &str, ip: impl Fn(&str) -> String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ip(&format!("-6 route show table local dev {dev}")).contains("ff00::/8")
        || !ip(&format!("-6 route show dev {dev}")).contains("fe80::/64")
    {
        assert!(Instant::now() < deadline, "IPv6 on {dev} did not come up");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Pings from namespace `ns` until one answer arrives, for at most 20 s.
pub fn ping_in(ns: &str, addr: &str) -> bool {
    ping_within(ns, addr, Duration::from_secs(20)).is_some()
}

/// Drops fields that change on their own (counters, link ids of peers).
pub fn strip_volatile(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for part in json.split(',') {
        if [
            "\"expires\"",
            "\"used\"",
            "\"valid_life_time\"",
            "\"preferred_life_time\"",
        ]
        .iter()
        .any(|k| part.trim_start_matches(['{', '[']).starts_with(k))
        {
            continue;
        }
        out.push_str(part);
        out.push(',');
    }
    out
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "ip netns pids {0} | xargs -r kill -9; sleep 0.05; ip netns del {0}",
            self.name
        ));
    }
}

/// Two test hosts joined by a veth pair (`underlay`): 203.0.113.1/24 + 2001:db8:ffff::1/64 on
/// `a`, .2 / ::2 on `b`.
pub struct Pair {
    pub a: Netns,
    pub b: Netns,
}

impl Pair {
    pub fn new() -> Pair {
        let a = Netns::new("a");
        let b = Netns::new("b");
        underlay(&a, &b);
        Pair { a, b }
    }
}

/// A veth between `a` (203.0.113.1/24, 2001:db8:ffff::1/64) and `b` (.2, ::2), up, and settled
/// (IPv6 configured the link-local addresses and their routes); its ends' names in `a` and `b`.
pub fn underlay(a: &Netns, b: &Netns) -> (String, String) {
    let (va, vb) = (format!("v{}", unique()), format!("v{}", unique()));
    must(&format!(
        "ip -n {} link add {va} type veth peer name {vb} netns {}",
        a.name, b.name
    ));
    for (ns, dev, n) in [(a, &va, 1), (b, &vb, 2)] {
        ns.ip(&format!("address add 203.0.113.{n}/24 dev {dev}"));
        ns.ip(&format!(
            "address add 2001:db8:ffff::{n}/64 dev {dev} nodad"
        ));
        ns.ip(&format!("link set {dev} up"));
    }
    for (ns, dev) in [(a, &va), (b, &vb)] {
        wait_ipv6(dev, |args| ns.ip(args));
    }
    (va, vb)
}

/// A network namespace that plays PID 1's ("init") for a test: wg-exec runs in a fresh PID
/// namespace whose PID 1 (a sleep) lives in this namespace, entered with `prefix()`. The
/// machine's own namespace is never touched.
pub struct FakeInit {
    pub ns: Netns,
    holder: std::process::Child,
    pid1: String,
}

impl FakeInit {
    pub fn new() -> FakeInit {
        let ns = Netns::new("init");
        let holder = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "unshare",
                "--pid",
                "--fork",
                "--mount-proc",
            ])
            .args(["sleep", "1000000"])
            .spawn()
            .unwrap();
        let mut pid1 = String::new();
        for _ in 0..500 {
            pid1 = text(&sh(&format!("pgrep -P {}", holder.id())).stdout)
                .trim()
                .to_string();
            if !pid1.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!pid1.is_empty(), "the PID namespace's init started");
        let init = FakeInit { ns, holder, pid1 };
        // Inside, /proc/1/ns/net is the namespace playing init.
        let inside = must(&format!("{} readlink /proc/1/ns/net", init.prefix()));
        let expected = must(&format!(
            "ip netns exec {} readlink /proc/self/ns/net",
            init.ns.name
        ));
        assert_eq!(inside, expected);
        init
    }

    /// Runs a command inside the fake init's PID, mount and network namespaces.
    pub fn prefix(&self) -> String {
        format!("nsenter --target {} --pid --mount --net", self.pid1)
    }
}

impl Drop for FakeInit {
    fn drop(&mut self) {
        let _ = sh(&format!("pkill -9 -P {}", self.holder.id()));
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
