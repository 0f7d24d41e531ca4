//! Real tunnels between test hosts in network namespaces, brought up and down by wg-exec on the
//! userspace backend (wireguard-go), observed with `ip` and `wg`: what the matrix of shapes
//! (tests/matrix.rs) does not cover. Root only; every namespace is the test's own.

mod support;
use support::conf::{interface, peer};
use support::*;

#[test]
fn two_hosts_ping_over_ipv4_and_ipv6_both_ways() {
    if !real_environment("two_hosts") {
        return;
    }
    let two = TwoHosts::new();
    let (pair, keys, ia, ib) = (&two.pair, &two.keys, &two.ia, &two.ib);
    let (ka, pa) = keys.private("a");
    let (kb, pb) = keys.private("b");
    let (psk, psk_text) = keys.psk("ab");
    let ca = keys.write(
        "a.ron",
        &interface(
            &["192.0.2.1/24", "2001:db8:1::1/64"],
            &ka,
            &format!("listen_port: 51820, mtu: 1400, fwmark: \"0x77\", socket_namespace: \"{}\",", pair.a.name),
            &[peer(
                &pb,
                &["192.0.2.2/32", "2001:db8:1::2/128"],
                &format!("preshared_key_file: \"{}\", endpoint: \"203.0.113.2:51821\", persistent_keepalive: 25", psk.display()),
            )],
        ),
    );
    let cb = keys.write(
        "b.ron",
        &interface(
            &["192.0.2.2/24", "2001:db8:1::2/64"],
            &kb,
            &format!(
                "listen_port: 51821, socket_namespace: \"{}\", backend: Userspace,",
                pair.b.name
            ),
            &[peer(
                &pa,
                &["192.0.2.1/32", "2001:db8:1::1/128"],
                &format!(
                    "preshared_key_file: \"{}\", endpoint: \"[2001:db8:ffff::1]:51820\"",
                    psk.display()
                ),
            )],
        ),
    );
    // The responder first, so that the initiator's first handshake is answered.
    ok(wg_exec("", &format!("up {ib} --config {}", cb.display())));
    // Before any handshake (which lets B learn A's address by roaming): as configured.
    assert_eq!(pair.b.wg_dump(ib)[1][2], "[2001:db8:ffff::1]:51820");
    // Backend Auto: this kernel has no WireGuard, so wg-exec falls back to wireguard-go.
    let log = ok(wg_exec(
        "",
        &format!("-v up {ia} --config {}", ca.display()),
    ));
    assert!(log.contains("starting wireguard-go"), "{log}");

    let dump = pair.a.wg_dump(ia);
    assert_eq!(dump.len(), 2, "{dump:?}");
    assert_eq!(dump[0][1], pa, "public key");
    assert_eq!(dump[0][2], "51820", "listen port");
    assert_eq!(dump[0][3], "0x77", "fwmark");
    assert_eq!(dump[1][0], pb);
    assert_eq!(dump[1][1], psk_text, "preshared key");
    assert_eq!(dump[1][2], "203.0.113.2:51821");
    assert_eq!(dump[1][3], "192.0.2.2/32,2001:db8:1::2/128");
    assert_eq!(dump[1][7], "25", "persistent keepalive");
    assert!(pair
        .a
        .ip(&format!("-j link show dev {ia}"))
        .contains("\"mtu\":1400"));

    assert!(pair.a.ping("192.0.2.2"), "A -> B over IPv4");
    assert!(pair.a.ping("2001:db8:1::2"), "A -> B over IPv6");
    assert!(pair.b.ping("192.0.2.1"), "B -> A over IPv4");
    assert!(pair.b.ping("2001:db8:1::1"), "B -> A over IPv6");
    let handshake: u64 = pair.a.wg_dump(ia)[1][4].parse().unwrap();
    assert!(handshake > 0, "a handshake happened");

    ok(wg_exec("", &format!("down {ia} --config {}", ca.display())));
    ok(wg_exec("", &format!("down {ib} --config {}", cb.display())));
    assert!(!pair.a.has_link(ia) && !pair.b.has_link(ib));
    assert!(!socket_exists(ia) && !socket_exists(ib));
    assert_eq!(wireguard_go_processes(ia) + wireguard_go_processes(ib), 0);
}

#[test]
fn routes_in_a_numbered_table_with_a_metric_and_allowed_ips_not_as_routes() {
    if !real_environment("routes") {
        return;
    }
    let two = TwoHosts::new();
    let (pair, keys, ia, ib) = (&two.pair, &two.keys, &two.ia, &two.ib);
    let (ka, pa) = keys.private("a");
    let (kb, pb) = keys.private("b");
    let extra_peer = peer(
        "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=",
        &["198.18.5.0/24", "2001:db8:5::/48"],
        "",
    );
    let ca = keys.write(
        "a.ron",
        &interface(
            &["192.0.2.1/24"],
            &ka,
            &format!("listen_port: 51820, table: \"1234\", metric: 50, backend: Userspace, socket_namespace: \"{}\",", pair.a.name),
            &[peer(&pb, &["192.0.2.2/32", "198.51.100.0/24"], "endpoint: \"203.0.113.2:51821\""), extra_peer],
        ),
    );
    // B: the module's basic test. Its only peer has 0.0.0.0/0 and ::/0 and no routes are made.
    let cb = keys.write(
        "b.ron",
        &interface(
            &["192.0.2.2/24"],
            &kb,
            &format!("listen_port: 51821, allowed_ips_as_routes: false, backend: Userspace, socket_namespace: \"{}\",", pair.b.name),
            &[peer(&pa, &["0.0.0.0/0", "::/0"], "endpoint: \"203.0.113.1:51820\"")],
        ),
    );
    let b_routes_before = pair.b.ip("-j route show table all");
    ok(wg_exec("", &format!("up {ib} --config {}", cb.display())));
    ok(wg_exec("", &format!("up {ia} --config {}", ca.display())));

    let table = pair.a.ip("-4 route show table 1234");
    for dst in ["192.0.2.2", "198.51.100.0/24", "198.18.5.0/24"] {
        assert!(
            table.contains(&format!("{dst} dev {ia} scope link metric 50")),
            "{dst} in table 1234:\n{table}"
        );
    }
    let table6 = pair.a.ip("-6 route show table 1234");
    assert!(
        table6.contains(&format!("2001:db8:5::/48 dev {ia} metric 50")),
        "{table6}"
    );
    assert!(!pair
        .a
        .ip("route show table main")
        .contains("198.51.100.0/24"));
    // B installed no route of its own: only the kernel's prefix route of its address is new.
    let b_routes = pair.b.ip("route show table all");
    assert!(!b_routes.contains("default"), "{b_routes}");
    assert_eq!(
        b_routes
            .lines()
            .filter(|l| l.contains(ib.as_str()))
            .filter(|l| !l.contains("proto kernel")
                && !l.starts_with("local")
                && !l.starts_with("multicast")
                && !l.contains("fe80"))
            .count(),
        0,
        "{b_routes}"
    );
    assert_eq!(pair.b.wg_dump(ib)[1][3], "0.0.0.0/0,::/0");
    assert!(pair.a.ping("192.0.2.2"));
    assert!(pair.b.ping("192.0.2.1"));

    ok(wg_exec("", &format!("down {ia} --config {}", ca.display())));
    ok(wg_exec("", &format!("down {ib} --config {}", cb.display())));
    assert_eq!(pair.a.ip("route show table 1234"), "");
    assert_eq!(pair.b.ip("-j route show table all"), b_routes_before);
}

/// A complete host-A configuration in `pair.a` with everything that leaves traces.
fn full_config(
    pair: &Pair,
    keys: &Keys,
    ia: &str,
    extra: &str,
    ips: &[&str],
) -> std::path::PathBuf {
    let (ka, _) = keys.private("a");
    let (psk, _) = keys.psk("p");
    let peers = [
        peer("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", &["198.18.0.0/24", "2001:db8:9::/48"], &format!("preshared_key_file: \"{}\", endpoint: \"203.0.113.2:51821\", persistent_keepalive: 5", psk.display())),
        peer("TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=", &["198.18.1.0/24"], ""),
    ];
    keys.write(
        &format!("{ia}.ron"),
        &interface(
            ips,
            &ka,
            &format!("listen_port: 51820, mtu: 1380, table: \"77\", metric: 9, backend: Userspace, socket_namespace: \"{}\", {extra}", pair.a.name),
            &peers,
        ),
    )
}

#[test]
fn down_leaves_no_trace() {
    if !real_environment("down_leaves_no_trace") {
        return;
    }
    let pair = Pair::new();
    let keys = Keys::new();
    let ia = iface("a");
    let _s = SocketGuard(ia.clone());
    let cfg = full_config(&pair, &keys, &ia, "", &["192.0.2.1/24", "2001:db8:1::1/64"]);
    let before = pair.a.snapshot();
    ok(wg_exec("", &format!("up {ia} --config {}", cfg.display())));
    assert!(pair.a.has_link(&ia));
    assert_eq!(pair.a.ip("route show table 77").lines().count(), 2);
    assert_ne!(pair.a.snapshot(), before);
    ok(wg_exec(
        "",
        &format!("down {ia} --config {}", cfg.display()),
    ));
    assert_eq!(pair.a.snapshot(), before);
    assert!(!socket_exists(&ia));
    assert_eq!(wireguard_go_processes(&ia), 0);
    // A second down finds nothing and succeeds.
    ok(wg_exec(
        "",
        &format!("down {ia} --config {}", cfg.display()),
    ));
}

#[test]
fn a_failure_in_the_middle_of_up_leaves_no_trace() {
    if !real_environment("failure_mid_up") {
        return;
    }
    let pair = Pair::new();
    let keys = Keys::new();
    let before = pair.a.snapshot();
    // A hook that fails after everything else (post_setup), and an address the kernel refuses.
    let cases = [
        (
            "post_setup: \"exit 1\",",
            vec!["192.0.2.1/24"],
            "failed at step 'post_setup'",
            "/bin/bash exited with status 1",
        ),
        (
            "",
            vec!["192.0.2.1/24", "ff02::1/128"],
            "failed at step 'addresses'",
            "Cannot assign multicast address",
        ),
    ];
    for (extra, ips, step, reason) in cases {
        let ia = iface("f");
        let _s = SocketGuard(ia.clone());
        let cfg = full_config(&pair, &keys, &ia, extra, &ips);
        let out = wg_exec("", &format!("up {ia} --config {}", cfg.display()));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(step), "{err}");
        assert!(err.contains(reason), "{err}");
        assert!(err.contains("rolled back:"), "{err}");
        assert_eq!(pair.a.snapshot(), before, "after {step}");
        assert!(!socket_exists(&ia));
        assert_eq!(wireguard_go_processes(&ia), 0);
    }
}

#[test]
fn a_thousand_peers_come_up_with_their_routes() {
    if !real_environment("thousand_peers") {
        return;
    }
    let pair = Pair::new();
    let keys = Keys::new();
    let ia = iface("k");
    let _s = SocketGuard(ia.clone());
    let (ka, _) = keys.private("a");
    let mut peers = Vec::new();
    for i in 0..1000u32 {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_be_bytes());
        b[31] = 0x55;
        let public = wg_exec_steps::Key::from_bytes(b, false).to_base64();
        peers.push(peer(
            &public,
            &[
                &format!("198.18.{}.{}/32", i / 256, i % 256),
                &format!("2001:db8:2::{i:x}/128"),
            ],
            &format!("endpoint: \"198.51.100.{}:51820\"", i % 250 + 1),
        ));
    }
    let cfg = keys.write(
        "big.ron",
        &interface(
            &["192.0.2.1/24", "2001:db8:1::1/64"],
            &ka,
            &format!(
                "listen_port: 51820, mtu: 1420, backend: Userspace, socket_namespace: \"{}\",",
                pair.a.name
            ),
            &peers,
        ),
    );
    ok(wg_exec("", &format!("up {ia} --config {}", cfg.display())));
    let dump = pair.a.wg_dump(&ia);
    assert_eq!(dump.len(), 1001);
    assert!(dump[1..].iter().all(|p| p[3].split(',').count() == 2));
    let v4 = pair.a.ip(&format!("-4 route show dev {ia}"));
    let v6 = pair.a.ip(&format!("-6 route show dev {ia}"));
    assert_eq!(
        v4.lines().filter(|l| l.starts_with("198.18.")).count(),
        1000
    );
    assert_eq!(
        v6.lines().filter(|l| l.starts_with("2001:db8:2::")).count(),
        1000
    );
    ok(wg_exec(
        "",
        &format!("down {ia} --config {}", cfg.display()),
    ));
    assert!(!pair.a.has_link(&ia));
    assert_eq!(
        pair.a
            .ip("-6 route show")
            .lines()
            .filter(|l| l.starts_with("2001:db8:2::"))
            .count(),
        0
    );
}

#[test]
fn endpoint_host_names_resolve_in_the_socket_namespace_and_failures_are_clear() {
    if !real_environment("endpoint_names") {
        return;
    }
    let pair = Pair::new();
    let keys = Keys::new();
    let ia = iface("n");
    let _s = SocketGuard(ia.clone());
    let (ka, _) = keys.private("a");
    let body = |endpoint: &str| {
        interface(
            &["192.0.2.1/24"],
            &ka,
            &format!("backend: Userspace, socket_namespace: \"{}\",", pair.a.name),
            &[peer(
                "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
                &["192.0.2.2/32"],
                &format!("endpoint: \"{endpoint}\""),
            )],
        )
    };
    // /etc/hosts answers for localhost in any namespace.
    let good = keys.write("good.ron", &body("localhost:51999"));
    ok(wg_exec("", &format!("up {ia} --config {}", good.display())));
    let endpoint = &pair.a.wg_dump(&ia)[1][2];
    assert!(
        endpoint == "127.0.0.1:51999" || endpoint == "[::1]:51999",
        "{endpoint}"
    );
    ok(wg_exec(
        "",
        &format!("down {ia} --config {}", good.display()),
    ));

    // A name that cannot resolve: with a bounded retry count the up fails and is rolled back.
    let before = pair.a.snapshot();
    let bad = keys.write("bad.ron", &body("wg-exec-test.invalid:51820"));
    let out = wg_exec(
        "WG_ENDPOINT_RESOLUTION_RETRIES=1",
        &format!("up {ia} --config {}", bad.display()),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed at step 'peer set'"), "{err}");
    assert!(
        err.contains(&format!("resolve endpoint wg-exec-test.invalid:51820 of peer xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= in netns {}", pair.a.name)),
        "{err}"
    );
    assert!(err.contains("(after 2 attempts)"), "{err}");
    assert_eq!(pair.a.snapshot(), before);
    assert!(!socket_exists(&ia));
}

#[test]
fn a_missing_namespace_is_a_configuration_error_and_nothing_changes() {
    if !real_environment("missing_namespace") {
        return;
    }
    let keys = Keys::new();
    let ia = iface("m");
    let (ka, _) = keys.private("a");
    let cfg = keys.write(
        "m.ron",
        &interface(
            &["192.0.2.1/24"],
            &ka,
            "socket_namespace: \"wg-exec-no-such-ns\",",
            &[],
        ),
    );
    let out = wg_exec("", &format!("up {ia} --config {}", cfg.display()));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim_end(),
        format!("wg-exec: error: {}:4:23: socket_namespace: network namespace `wg-exec-no-such-ns` does not exist (/run/netns/wg-exec-no-such-ns); wg-exec never creates namespaces (ip netns add wg-exec-no-such-ns)", cfg.display())
    );
    assert!(!socket_exists(&ia));
}
