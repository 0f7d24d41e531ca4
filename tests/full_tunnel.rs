//! Full tunnels (`table: "auto"` with a /0 allowed IP) for real, with wireguard-go in network
//! namespaces, in the plain shape users write (no namespace options: wg-exec runs in the
//! client's namespace, as under `ip netns exec`), as root and as a unit user with only its
//! ambient capabilities.
//!
//! The client reaches its server's endpoint (192.0.2.1, on the server's loopback) only through
//! its underlay default route, and runs a strict reverse-path filter: a reply from the
//! endpoint looked up without the tunnel's mark would route into the tunnel and be dropped, so
//! every handshake proves that the firewall table and src_valid_mark work. An "internet"
//! address on the server (198.51.100.7, 2001:db8:100::7) answers through the tunnel.

mod support;
use std::path::{Path, PathBuf};
use support::*;

/// The client's state that a full tunnel touches, as text to compare before and after:
/// links, addresses, routes of all tables and rules (`ip -j`), the nftables ruleset and the
/// src_valid_mark sysctl.
fn state(ns: &Netns) -> String {
    let nft = ns.exec("nft list ruleset");
    assert!(nft.status.success(), "nft: {}", text(&nft.stderr));
    let sysctl = must(&format!(
        "ip netns exec {} sysctl -n net.ipv4.conf.all.src_valid_mark",
        ns.name
    ));
    format!(
        "{}== nft\n{}== src_valid_mark {}",
        ns.snapshot(),
        text(&nft.stdout),
        sysctl
    )
}

struct Hosts {
    client: Netns,
    /// Kept for its lifetime: dropped, the namespace goes.
    _server: Netns,
    keys: Keys,
    iface: String,
    client_public: String,
    server_public: String,
    client_key: PathBuf,
    _guards: (SocketGuard, SocketGuard),
}

impl Hosts {
    fn new() -> Hosts {
        let client = Netns::new("c");
        let server = Netns::new("s");
        let (vc, _) = underlay(&client, &server);
        client.ip("route add default via 203.0.113.2");
        client.ip(&format!(
            "-6 route add default via 2001:db8:ffff::2 dev {vc}"
        ));
        // The endpoint and the "internet", on the server's loopback.
        server.ip("address add 192.0.2.1/32 dev lo");
        server.ip("address add 198.51.100.7/32 dev lo");
        server.ip("address add 2001:db8:100::7/128 dev lo");
        // Strict reverse-path filtering on the client, everywhere.
        must(&format!(
            "ip netns exec {} sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1 net.ipv4.conf.{vc}.rp_filter=1",
            client.name
        ));
        let keys = Keys::new();
        let (client_key, client_public) = keys.private("client");
        let (server_key, server_public) = keys.private("server");
        let server_iface = iface("s");
        let iface = iface("c");
        must(&format!(
            "ip netns exec {} wireguard-go {server_iface}",
            server.name
        ));
        server.ip(&format!("address add 198.18.0.1/24 dev {server_iface}"));
        server.ip(&format!(
            "address add 2001:db8:1::1/64 dev {server_iface} nodad"
        ));
        must(&format!(
            "ip netns exec {} wg set {server_iface} private-key {} listen-port 51820 peer {client_public} allowed-ips 198.18.0.2/32,2001:db8:1::2/128",
            server.name,
            server_key.display()
        ));
        server.ip(&format!("link set {server_iface} up"));
        Hosts {
            _guards: (
                SocketGuard(iface.clone()),
                SocketGuard(server_iface.clone()),
            ),
            client,
            _server: server,
            keys,
            iface,
            client_public,
            server_public,
            client_key,
        }
    }

    /// The client's configuration: plain (no namespace options), backend Auto.
    fn config(&self, allowed: &str, extra: &str) -> PathBuf {
        let body = format!(
            r#"(
    ips: ["198.18.0.2/24", "2001:db8:1::2/64"],
    private_key_file: "{}",
    table: "auto",
    {extra}
    peers: [(public_key: "{}", allowed_ips: [{allowed}], endpoint: "192.0.2.1:51820")],
)"#,
            self.client_key.display(),
            self.server_public
        );
        self.keys.write(&format!("{}.ron", self.iface), &body)
    }

    fn run(&self, verb: &str, cfg: &std::path::Path) -> std::process::Output {
        wg_exec(
            &format!("ip netns exec {}", self.client.name),
            &format!("{verb} {} --config {}", self.iface, cfg.display()),
        )
    }

    fn route_get(&self, args: &str) -> String {
        must(&format!(
            "ip netns exec {} ip route get {args}",
            self.client.name
        ))
    }

    /// wg-exec for the client's interface as the unit user (uid 65534, ambient CAP_NET_ADMIN),
    /// with its own state directory and /run/wireguard; made after the files it reads.
    fn unit_user(&self, cfg: &Path) -> Wg {
        Wg::new(
            Who::UnitUser(&["net_admin"]),
            self.keys.dir.path(),
            &self.client.name,
            &self.iface,
            cfg,
        )
    }

    /// The device's fwmark, as `wg show` says it.
    fn fwmark(&self) -> String {
        must(&format!(
            "ip netns exec {} wg show {} fwmark",
            self.client.name, self.iface
        ))
        .trim()
        .to_string()
    }

    /// The journal is lost (a new disk, a hand that cleaned up): only the configuration is left.
    fn lose_journal(&self) {
        for f in ["ron", "applied.json"] {
            std::fs::remove_file(format!("{STATE_DIR}/{}.{f}", self.iface)).unwrap();
        }
    }

    /// The client's transfer counters of its one peer (rx, tx).
    fn transfer(&self) -> (u64, u64) {
        let dump = self.client.wg_dump(&self.iface);
        let peer = &dump[1];
        (peer[5].parse().unwrap(), peer[6].parse().unwrap())
    }
}

fn the_full_tunnel_works(h: &Hosts, v6: bool) {
    // Everything goes through the tunnel; WireGuard's own packets, which carry the mark, go to
    // the endpoint through the underlay.
    let inet = h.route_get("198.51.100.7");
    assert!(inet.contains(&format!("dev {}", h.iface)), "{inet}");
    let marked = h.route_get(&format!("192.0.2.1 mark {}", h.fwmark()));
    assert!(!marked.contains(&h.iface), "{marked}");
    // The endpoint's replies, checked without the mark, would be routed into the tunnel: the
    // strict filter would drop them unless their mark is restored. That is what this test is
    // about: the handshakes below pass only because it is.
    let unmarked = h.route_get("192.0.2.1");
    assert!(unmarked.contains(&format!("dev {}", h.iface)), "{unmarked}");
    let (rx0, _) = h.transfer();
    assert!(
        h.client.ping("198.51.100.7"),
        "IPv4 through the full tunnel"
    );
    let (rx1, _) = h.transfer();
    assert!(
        rx1 > rx0,
        "the replies came through the tunnel: {rx0} -> {rx1}"
    );
    if v6 {
        let inet6 = h.route_get("2001:db8:100::7");
        assert!(inet6.contains(&format!("dev {}", h.iface)), "{inet6}");
        assert!(
            h.client.ping("2001:db8:100::7"),
            "IPv6 through the full tunnel"
        );
        assert!(h.transfer().0 > rx1);
    }
}

#[test]
fn full_tunnel_ipv4_and_ipv6_as_root_and_down_restores_everything_byte_for_byte() {
    if !real_environment("full_tunnel_v4_v6") {
        return;
    }
    let h = Hosts::new();
    let cfg = h.config("\"0.0.0.0/0\", \"::/0\"", "");
    // Another tool's suppress rules, present before up, at other priorities.
    h.client
        .ip("-4 rule add priority 1000 table main suppress_prefixlength 0");
    h.client
        .ip("-6 rule add priority 1000 table main suppress_prefixlength 0");
    let before = state(&h.client);
    ok(h.run("up", &cfg));
    let rules = h.client.ip("-4 rule show");
    assert!(
        rules.contains("31820:\tfrom all lookup main suppress_prefixlength 0"),
        "{rules}"
    );
    assert!(
        rules.contains("31821:\tnot from all fwmark 0xca6c lookup 51820"),
        "{rules}"
    );
    assert!(h.client.ip("-6 rule show").contains("31821:"));
    let nft = text(&h.client.exec("nft list ruleset").stdout);
    for table in ["table ip wg-exec-", "table ip6 wg-exec-"] {
        assert!(nft.contains(table), "{nft}");
    }
    assert_eq!(
        must(&format!(
            "ip netns exec {} sysctl -n net.ipv4.conf.all.src_valid_mark",
            h.client.name
        ))
        .trim(),
        "1"
    );
    // The automatic MTU: the path to the endpoint is a veth of 1500, minus 80.
    assert!(h
        .client
        .ip(&format!("link show {}", h.iface))
        .contains("mtu 1420"));
    the_full_tunnel_works(&h, true);
    // status sees no drift, and reload of the same file changes nothing (the chosen fwmark
    // stays: it is not in the configuration).
    ok(h.run("status", &cfg));
    ok(h.run("reload", &cfg));
    assert_eq!(h.fwmark(), "0xca6c");
    the_full_tunnel_works(&h, true);
    // A live change keeps the full tunnel as it is.
    let rules_up = h.client.ip("-6 rule show");
    let cfg2 = h.config("\"0.0.0.0/0\", \"::/0\"", "");
    let body = std::fs::read_to_string(&cfg2).unwrap().replace(
        "endpoint: \"192.0.2.1:51820\"",
        "endpoint: \"192.0.2.1:51820\", persistent_keepalive: 21",
    );
    std::fs::write(&cfg2, body).unwrap();
    ok(h.run("reload", &cfg2));
    assert_eq!(h.client.wg_dump(&h.iface)[1][7], "21");
    assert_eq!(h.client.ip("-6 rule show"), rules_up);
    the_full_tunnel_works(&h, true);
    // A change of the full tunnel's shape is refused, and nothing changes.
    let v4_only = h.keys.write(
        "v4only.ron",
        &std::fs::read_to_string(&cfg2)
            .unwrap()
            .replace("\"0.0.0.0/0\", \"::/0\"", "\"0.0.0.0/0\""),
    );
    let up_state = state(&h.client);
    let out = h.run("reload", &v4_only);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the full tunnel (0.0.0.0/0 and ::/0"), "{err}");
    assert_eq!(state(&h.client), up_state);
    // A rule deleted behind wg-exec's back (systemd-networkd does that) is drift.
    h.client.ip("-4 rule del priority 31821");
    let out = h.run("status", &cfg2);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("-4 rule priority 31821 not fwmark 0xca6c lookup 51820 is missing"),
        "{said}"
    );
    // Down removes the rest, and what is already gone is fine.
    ok(h.run("down", &cfg2));
    assert_eq!(state(&h.client), before, "down restores everything");
}

#[test]
fn status_shows_the_leak_protection_gone() {
    if !real_environment("full_tunnel_status_unreachable") {
        return;
    }
    let h = Hosts::new();
    let cfg = h.config("\"0.0.0.0/0\"", "");
    ok(h.run("up", &cfg));
    ok(h.run("status", &cfg));
    h.client.ip("-6 route del unreachable default table 51820");
    let out = h.run("status", &cfg);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("route unreachable ::/0 table 51820 is missing"),
        "{said}"
    );
    ok(h.run("down", &cfg));
}

#[test]
fn an_ipv4_full_tunnel_blocks_ipv6_unless_told_not_to() {
    if !real_environment("full_tunnel_v4_only") {
        return;
    }
    let h = Hosts::new();
    let before = state(&h.client);
    let cfg = h.config("\"0.0.0.0/0\"", "");
    ok(h.run("up", &cfg));
    the_full_tunnel_works(&h, false);
    let six = h.client.exec("ping -6 -c 1 -W 1 2001:db8:100::7");
    assert!(
        !six.status.success(),
        "IPv6 must not leak around the tunnel"
    );
    let route = h.client.ip("-6 route show table 51820");
    assert!(route.contains("unreachable default"), "{route}");
    ok(h.run("down", &cfg));
    assert_eq!(state(&h.client), before);
    // Switched off: IPv6 goes its own way through the underlay.
    let cfg = h.config("\"0.0.0.0/0\"", "ipv6_leak_protection: false,");
    ok(h.run("up", &cfg));
    assert!(
        h.client.ping("2001:db8:100::7"),
        "IPv6 through the underlay"
    );
    assert!(h
        .client
        .ip("-6 rule show")
        .lines()
        .all(|l| !l.contains("3182")));
    ok(h.run("down", &cfg));
    assert_eq!(state(&h.client), before);
}

#[test]
fn full_tunnel_as_a_unit_user_with_ambient_capabilities() {
    if !real_environment("full_tunnel_non_root") {
        return;
    }
    let h = Hosts::new();
    let before = state(&h.client);
    let cfg = h.config("\"0.0.0.0/0\", \"::/0\"", "");
    // The unit user's world: its own state directory and /run/wireguard, its files.
    let wg = h.unit_user(&cfg);
    let run = |verb: &str| wg.run(verb);
    ok(run("up"));
    let dump = wg_dump_in(&h.client.name, &h.iface, Some(&wg.sockets));
    assert_eq!(dump[0][3], "0xca6c", "fwmark: {dump:?}");
    assert!(h.client.ping("198.51.100.7"));
    assert!(h.client.ping("2001:db8:100::7"));
    assert!(text(&h.client.exec("nft list ruleset").stdout).contains("wg-exec-"));
    ok(run("down"));
    assert_eq!(state(&h.client), before);
}

#[test]
fn a_fault_at_every_step_of_a_full_tunnel_up_leaves_no_trace() {
    if !real_environment("full_tunnel_faults") {
        return;
    }
    let h = Hosts::new();
    // A second peer with a plain prefix, so that the main-table route step runs too.
    let body = format!(
        r#"(
    ips: ["198.18.0.2/24", "2001:db8:1::2/64"],
    private_key_file: "{}",
    table: "auto",
    post_setup: "true",
    peers: [
        (public_key: "{}", allowed_ips: ["0.0.0.0/0", "::/0"], endpoint: "192.0.2.1:51820"),
        (public_key: "{}", allowed_ips: ["198.51.100.128/25"]),
    ],
)"#,
        h.client_key.display(),
        h.server_public,
        h.client_public
    );
    let cfg = h.keys.write("faults.ron", &body);
    let before = state(&h.client);
    for step in [
        "link add",
        "addresses",
        "key",
        "up",
        "post_setup",
        "peer set",
        "auto mtu",
        "route",
        "fwmark",
        "rules",
        "default route",
        "firewall",
        "sysctl",
    ] {
        let out = wg_exec(
            &format!("WG_EXEC_FAULT='{step}' ip netns exec {}", h.client.name),
            &format!("up {} --config {}", h.iface, cfg.display()),
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{step}: {err}");
        assert!(err.contains(&format!("failed at step '{step}'")), "{err}");
        assert_eq!(state(&h.client), before, "after a fault at {step}: {err}");
        assert_eq!(wireguard_go_processes(&h.iface), 0, "{step}");
    }
    // A firewall table of that name that is someone else's: the kernel's own refusal, rolled
    // back the same way, and theirs left alone.
    let theirs = format!("wg-exec-{}", h.iface);
    must(&format!(
        "ip netns exec {} nft add table ip {theirs}",
        h.client.name
    ));
    let with_theirs = state(&h.client);
    let out = h.run("up", &cfg);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed at step 'firewall'"), "{err}");
    assert!(err.contains("nft failed"), "{err}");
    assert_eq!(state(&h.client), with_theirs);
    must(&format!(
        "ip netns exec {} nft delete table ip {theirs}",
        h.client.name
    ));
    // SIGKILL after the sysctl step (everything applied): the journal
    // alone takes it all back, by down, or by the next up before it starts over.
    let killed_after_sysctl = || {
        let mut child = spawn_in(
            &h.client,
            &[("WG_EXEC_PAUSE", "after:sysctl")],
            &["up", &h.iface, "--config", &cfg.display().to_string()],
        );
        wait_for_pause(&mut child);
        must(&format!("kill -9 {}", child.id()));
        let _ = child.wait();
        assert!(state(&h.client).contains("31821"), "the rules were there");
    };
    killed_after_sysctl();
    ok(h.run("down", &cfg));
    assert_eq!(state(&h.client), before, "down after SIGKILL");
    killed_after_sysctl();
    let said = ok(h.run("up", &cfg));
    assert!(
        said.contains("rolled back the unfinished transaction"),
        "{said}"
    );
    assert!(said.contains("full tunnel teardown"), "{said}");
    the_full_tunnel_works(&h, true);
    ok(h.run("down", &cfg));
    assert_eq!(state(&h.client), before, "up after SIGKILL, then down");
    // The link deleted behind wg-exec's back: the next up undoes the rest first, from the
    // journal, the sysctl included.
    ok(h.run("up", &cfg));
    must(&format!("ip -n {} link del {}", h.client.name, h.iface));
    let said = ok(h.run("up", &cfg));
    assert!(said.contains("its link is gone"), "{said}");
    ok(h.run("down", &cfg));
    assert_eq!(
        state(&h.client),
        before,
        "up after the link was deleted, then down"
    );
    // And a clean up and down.
    ok(h.run("up", &cfg));
    ok(h.run("down", &cfg));
    assert_eq!(state(&h.client), before);
}

#[test]
fn a_rule_at_the_full_tunnel_priorities_is_refused_and_left_alone() {
    if !real_environment("full_tunnel_priority_taken") {
        return;
    }
    let h = Hosts::new();
    h.client
        .ip("-6 rule add priority 31820 table main suppress_prefixlength 0");
    let before = state(&h.client);
    let cfg = h.config("\"0.0.0.0/0\", \"::/0\"", "");
    let out = h.run("up", &cfg);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("priority 31820 is taken by another rule"),
        "{err}"
    );
    assert_eq!(state(&h.client), before);
}

/// `down` without a journal finds the full tunnel by its shape and leaves the client as it was
/// before up, but for the sysctl, whose earlier value nobody knows: it stays 1, as said.
fn down_finds_what_a_full_tunnel_left(h: &Hosts, cfg: &Path, before: &str) {
    let said = ok(h.run("down", cfg));
    assert!(said.contains("removing what a full tunnel left"), "{said}");
    let after = state(&h.client);
    assert_eq!(
        after.replace("== src_valid_mark 1", "== src_valid_mark 0"),
        before,
        "{after}"
    );
}

#[test]
fn down_without_a_journal_finds_the_full_tunnel_by_its_shape() {
    if !real_environment("full_tunnel_no_journal") {
        return;
    }
    let h = Hosts::new();
    let before = state(&h.client);
    let cfg = h.config("\"0.0.0.0/0\", \"::/0\"", "");
    ok(h.run("up", &cfg));
    h.lose_journal();
    down_finds_what_a_full_tunnel_left(&h, &cfg, &before);
    // And without the link too (its wireguard-go killed, its journal lost): the rules whose
    // table no device's route uses any more are an orphan's, and go with the firewall tables.
    let cfg4 = h.config("\"0.0.0.0/0\"", "");
    ok(h.run("up", &cfg4));
    h.lose_journal();
    must(&format!("ip -n {} link del {}", h.client.name, h.iface));
    down_finds_what_a_full_tunnel_left(&h, &cfg4, &before);
    // So the next up is not stuck behind them.
    ok(h.run("up", &cfg4));
    ok(h.run("down", &cfg4));
}

#[test]
fn full_tunnel_on_boringtun() {
    if !real_environment("full_tunnel_boringtun") {
        return;
    }
    let Some(boringtun) = boringtun("full_tunnel_boringtun") else {
        return;
    };
    let h = Hosts::new();
    let before = state(&h.client);
    let cfg = h.config(
        "\"0.0.0.0/0\", \"::/0\"",
        &format!("backend: Userspace, userspace_implementation: \"{boringtun}\","),
    );
    ok(h.run("up", &cfg));
    assert!(h.client.ip("-4 rule show").contains("31821:"));
    the_full_tunnel_works(&h, true);
    ok(h.run("status", &cfg));
    ok(h.run("down", &cfg));
    assert_eq!(state(&h.client), before);
}

#[test]
fn down_never_takes_another_interfaces_full_tunnel_or_a_rule_of_the_same_shape() {
    if !real_environment("full_tunnel_not_ours") {
        return;
    }
    let h = Hosts::new();
    let cfg = h.config("\"0.0.0.0/0\", \"::/0\"", "");
    ok(h.run("up", &cfg));
    let up = state(&h.client);
    // `down` of an interface that was never up, with a full tunnel configuration and no
    // journal: the rules at wg-exec's priorities are the other interface's, and stay.
    let other = iface("x");
    let out = wg_exec(
        &format!("ip netns exec {}", h.client.name),
        &format!("down {other} --config {}", cfg.display()),
    );
    let said = text(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert_eq!(
        state(&h.client),
        up,
        "another interface's down left ours alone"
    );
    the_full_tunnel_works(&h, true);
    // Another tool's rule where ours was, of the same shape but for the invert flag: the
    // kernel's delete would take it for ours; down must not.
    h.client.ip("-4 rule del priority 31821");
    h.client
        .ip("-4 rule add priority 31821 fwmark 0xca6c lookup 51820");
    ok(h.run("down", &cfg));
    let rules = h.client.ip("-4 rule show");
    assert!(
        rules.contains("31821:\tfrom all fwmark 0xca6c lookup 51820"),
        "{rules}"
    );
}

#[test]
fn dns_is_refused_when_wg_exec_runs_in_a_namespace_other_than_the_hosts() {
    if !real_environment("dns_foreign_netns") {
        return;
    }
    // systemd-resolved and resolvconf serve the host's namespace: from inside another one
    // (ip netns exec, the way wg-exec's own tests run it), the link's index would name another
    // link of the host's. Refused before anything is made, as root and as a unit user (who
    // cannot read PID 1's namespace: the named namespaces of /run/netns tell it).
    let h = Hosts::new();
    let cfg = h.config("\"198.51.100.0/24\"", "dns: [\"192.0.2.53\"],");
    let before = state(&h.client);
    let out = h.run("up", &cfg);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("dns: wg-exec runs in a network namespace other than the host's"),
        "{err}"
    );
    assert_eq!(state(&h.client), before);
    let wg = h.unit_user(&cfg);
    let out = wg.run("check");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("other than the host's"), "{err}");
}

#[test]
fn full_tunnel_with_the_interface_in_a_namespace_of_its_own() {
    if !real_environment("full_tunnel_interface_namespace") {
        return;
    }
    // The module's shape: the UDP socket in the underlay's namespace (the client host), the
    // interface in an otherwise empty one, whose only way out is the tunnel. The policy
    // routing goes where the interface is; wg-exec runs in the test's own namespace and
    // touches only the two it is given.
    let h = Hosts::new();
    let t = Netns::new("t");
    let before = (state(&h.client), state(&t));
    let cfg = h.config(
        "\"0.0.0.0/0\", \"::/0\"",
        &format!(
            "socket_namespace: \"{}\", interface_namespace: \"{}\",",
            h.client.name, t.name
        ),
    );
    ok(wg_exec(
        "",
        &format!("up {} --config {}", h.iface, cfg.display()),
    ));
    assert!(
        t.ip("-4 rule show").contains("31821:"),
        "rules in the interface's namespace"
    );
    assert!(
        !h.client.ip("-4 rule show").contains("3182"),
        "none in the socket's"
    );
    assert!(
        t.ping("198.51.100.7"),
        "IPv4 through the tunnel from the interface's namespace"
    );
    assert!(t.ping("2001:db8:100::7"), "IPv6 too");
    ok(wg_exec(
        "",
        &format!("down {} --config {}", h.iface, cfg.display()),
    ));
    assert_eq!((state(&h.client), state(&t)), before);
}
