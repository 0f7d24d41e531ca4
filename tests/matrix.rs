//! The spine of the real tests: the shapes users write × the userspace implementations. Each
//! cell brings host A up with wg-exec against a peer B in another namespace, pings through the
//! tunnel both ways over IPv4 and IPv6, reads the device back with `wg show dump`, brings it
//! down and checks that nothing is left (links, addresses, routes and rules of every namespace
//! involved, the UAPI socket, the process, the journal). The kernel column runs in the VM
//! (tests/vm/guest.sh, "matrix kernel …" checks). Root only; every namespace is the test's own.
//!
//! The plain shape has no namespace option at all: wg-exec itself runs inside a namespace the
//! test made (`ip netns exec`), as it would run in a machine's own. It never gets a namespace
//! option to isolate it.

mod support;
use std::path::{Path, PathBuf};
use support::conf::{Conf, Peer};
use support::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    /// No namespace options; wg-exec runs inside host A's namespace.
    Plain,
    /// The same, as uid 65534 with only the ambient CAP_NET_ADMIN a unit would grant it.
    PlainNonRoot,
    /// `socket_namespace: A`; wg-exec runs in the machine's namespace, which it does not touch.
    SocketOnly,
    /// `interface_namespace: T` (MTU 1280); wg-exec runs inside A, where the socket stays.
    InterfaceOnly,
    /// `socket_namespace: A, interface_namespace: T`.
    Both,
    /// `socket_namespace: A, interface_namespace: "init"`, PID 1 played by a fresh PID+net
    /// namespace.
    InterfaceInit,
}

/// What a cell checks before and after: every namespace involved, as `ip -j` shows it.
struct Before(Vec<(String, String)>);

fn snapshots(spaces: &[&Netns]) -> Before {
    Before(
        spaces
            .iter()
            .map(|n| (n.name.clone(), n.snapshot()))
            .collect(),
    )
}

fn cell(implementation: &str, shape: Shape) {
    let test = format!("matrix {implementation} {shape:?}");
    if !real_environment(&test) {
        return;
    }
    let program = match implementation {
        "boringtun-cli" => match boringtun(&test) {
            Some(p) => p,
            None => return,
        },
        other => other.to_string(),
    };
    let pair = Pair::new();
    let tunnel = Netns::new("t");
    let init = (shape == Shape::InterfaceInit).then(FakeInit::new);
    let keys = Keys::new();
    let (ia, ib) = (iface("a"), iface("b"));
    let _s = (SocketGuard(ia.clone()), SocketGuard(ib.clone()));
    let (ka, pa) = keys.private("a");
    let (kb, pb) = keys.private("b");

    // Peer B: wireguard-go in its own namespace, its endpoint for A over the IPv6 underlay.
    let cb = keys.write(
        "b.ron",
        &Conf::new(&["192.0.2.2/24", "2001:db8:1::2/64"], &kb)
            .with("listen_port: 51821, backend: Userspace")
            .with(format!("socket_namespace: \"{}\"", pair.b.name))
            .peer(
                Peer::new(&pa, &["192.0.2.1/32", "2001:db8:1::1/128"])
                    .with("endpoint: \"[2001:db8:ffff::1]:51820\""),
            )
            .render(),
    );

    // Host A as the shape has it.
    let (a, t) = (&pair.a.name, &tunnel.name);
    let (namespaces, mtu, prefix, link_ns) = match shape {
        Shape::Plain | Shape::PlainNonRoot => {
            (String::new(), None, format!("ip netns exec {a}"), a.clone())
        }
        Shape::SocketOnly => (
            format!("socket_namespace: \"{a}\","),
            None,
            String::new(),
            a.clone(),
        ),
        Shape::InterfaceOnly => (
            format!("interface_namespace: \"{t}\","),
            Some(1280),
            format!("ip netns exec {a}"),
            t.clone(),
        ),
        Shape::Both => (
            format!("socket_namespace: \"{a}\", interface_namespace: \"{t}\","),
            None,
            String::new(),
            t.clone(),
        ),
        Shape::InterfaceInit => {
            let init = init.as_ref().unwrap();
            (
                format!("socket_namespace: \"{a}\", interface_namespace: \"init\","),
                None,
                init.prefix(),
                init.ns.name.clone(),
            )
        }
    };
    let backend = match implementation {
        "wireguard-go" => "backend: Userspace,".to_string(),
        _ => format!("backend: Userspace, userspace_implementation: \"{program}\","),
    };
    // The plain shapes leave the backend to Auto, as users do (this kernel has no WireGuard).
    let backend = match (shape, implementation) {
        (Shape::Plain | Shape::PlainNonRoot, "wireguard-go") => String::new(),
        _ => backend,
    };
    let ca = keys.write(
        "a.ron",
        &Conf::new(&["192.0.2.1/24", "2001:db8:1::1/64"], &ka)
            .with("listen_port: 51820")
            .with(mtu.map(|m| format!("mtu: {m}")).unwrap_or_default())
            .with(namespaces)
            .with(backend)
            .peer(
                Peer::new(&pb, &["192.0.2.2/32", "2001:db8:1::2/128"])
                    .with("endpoint: \"203.0.113.2:51821\", persistent_keepalive: 25"),
            )
            .render(),
    );

    let mut spaces = vec![&pair.a, &tunnel];
    if let Some(i) = &init {
        spaces.push(&i.ns);
    }
    let before = snapshots(&spaces);
    ok(wg_exec("", &format!("up {ib} --config {}", cb.display())));

    // The unit user's world: its own state directory and /run/wireguard, its files.
    let unit_dir = keys.dir.path().join("unit");
    let (state, sockets) = (unit_dir.join("state"), unit_dir.join("wireguard"));
    let run_a = |op: &str| -> std::process::Output {
        match shape {
            Shape::PlainNonRoot => sh(&as_unit_user(
                &["net_admin"],
                &sockets,
                &format!(
                    "ip netns exec {a} env WG_EXEC_STATE_DIR={} {{user}} {} -v {op} {ia} --config {}",
                    state.display(),
                    unit_bin(keys.dir.path()),
                    ca.display()
                ),
            )),
            _ => wg_exec(&prefix, &format!("-v {op} {ia} --config {}", ca.display())),
        }
    };
    if shape == Shape::PlainNonRoot {
        must(&format!(
            "mkdir -p {0} {1} && chown -R 65534:65534 {2}",
            state.display(),
            sockets.display(),
            keys.dir.path().display()
        ));
    }
    let sock_dir: Option<&Path> = (shape == Shape::PlainNonRoot).then_some(sockets.as_path());

    let out = run_a("up");
    let log = text(&out.stderr);
    assert!(out.status.success(), "{test}: up failed: {log}");
    assert!(
        log.contains(&format!("created {ia}")),
        "{test}: no creation logged: {log}"
    );
    let link = must(&format!("ip -n {link_ns} -j -d link show dev {ia}"));
    if let Some(m) = mtu {
        assert!(link.contains(&format!("\"mtu\":{m}")), "{test}: {link}");
    }
    // A userspace device is a TUN link served by the program.
    assert!(link.contains("\"info_kind\":\"tun\""), "{test}: {link}");

    let pings = [
        (ping_in(&link_ns, "192.0.2.2"), "A -> B over IPv4"),
        (ping_in(&link_ns, "2001:db8:1::2"), "A -> B over IPv6"),
        (pair.b.ping("192.0.2.1"), "B -> A over IPv4"),
        (pair.b.ping("2001:db8:1::1"), "B -> A over IPv6"),
    ];
    for (ok, what) in pings {
        assert!(ok, "{test}: {what} through the tunnel");
    }

    let dump = wg_dump_in(&link_ns, &ia, sock_dir);
    assert_eq!(dump.len(), 2, "{test}: {dump:?}");
    // boringtun-cli's UAPI `get` does not report the private key, so `wg` shows no public
    // key; the handshake below proves the key all the same.
    if implementation == "wireguard-go" {
        assert_eq!(dump[0][1], pa, "{test}: public key");
    }
    assert_eq!(dump[0][2], "51820", "{test}: listen port");
    assert_eq!(dump[1][0], pb, "{test}: peer");
    assert_eq!(dump[1][2], "203.0.113.2:51821", "{test}: endpoint");
    assert_eq!(
        dump[1][3], "192.0.2.2/32,2001:db8:1::2/128",
        "{test}: allowed ips"
    );
    assert_eq!(dump[1][7], "25", "{test}: keepalive");
    // The UDP socket is where the shape puts it: B learnt A's address from the handshake.
    let b_dump = pair.b.wg_dump(&ib);
    // (B's view: boringtun-cli's `get` reports no handshake time.)
    assert_ne!(b_dump[1][4], "0", "{test}: a handshake happened");
    assert!(
        b_dump[1][2] == "203.0.113.1:51820" || b_dump[1][2] == "[2001:db8:ffff::1]:51820",
        "{test}: B sees A at {}",
        b_dump[1][2]
    );

    let out = run_a("down");
    assert!(
        out.status.success(),
        "{test}: down failed: {}",
        text(&out.stderr)
    );
    ok(wg_exec("", &format!("down {ib} --config {}", cb.display())));

    // No trace.
    let after = snapshots(&spaces);
    for ((name, b), (_, a)) in before.0.iter().zip(after.0.iter()) {
        assert_eq!(a, b, "{test}: namespace {name} differs after down");
    }
    assert!(!socket_exists(&ia), "{test}: UAPI socket left");
    assert!(
        !sockets.join(format!("{ia}.sock")).exists(),
        "{test}: UAPI socket left in the unit's /run/wireguard"
    );
    let serving = text(&sh(&format!("pgrep -f '{ia}$' | xargs -r -n1 sh -c 'grep -q \"^State:.*Z\" /proc/$0/status || echo $0'")).stdout);
    assert!(
        serving.trim().is_empty(),
        "{test}: processes left: {serving}"
    );
    let journal: PathBuf = match shape {
        Shape::PlainNonRoot => state.join(format!("{ia}.ron")),
        _ => journal_path(&ia).into(),
    };
    assert!(!journal.exists(), "{test}: journal left");
}

#[test]
fn matrix_wireguard_go_plain() {
    cell("wireguard-go", Shape::Plain);
}

#[test]
fn matrix_wireguard_go_plain_non_root() {
    cell("wireguard-go", Shape::PlainNonRoot);
}

#[test]
fn matrix_wireguard_go_socket_namespace_only() {
    cell("wireguard-go", Shape::SocketOnly);
}

#[test]
fn matrix_wireguard_go_interface_namespace_only() {
    cell("wireguard-go", Shape::InterfaceOnly);
}

#[test]
fn matrix_wireguard_go_both_namespaces() {
    cell("wireguard-go", Shape::Both);
}

#[test]
fn matrix_wireguard_go_interface_in_init() {
    cell("wireguard-go", Shape::InterfaceInit);
}

#[test]
fn matrix_boringtun_plain() {
    cell("boringtun-cli", Shape::Plain);
}

#[test]
fn matrix_boringtun_plain_non_root() {
    cell("boringtun-cli", Shape::PlainNonRoot);
}

#[test]
fn matrix_boringtun_socket_namespace_only() {
    cell("boringtun-cli", Shape::SocketOnly);
}

#[test]
fn matrix_boringtun_interface_namespace_only() {
    cell("boringtun-cli", Shape::InterfaceOnly);
}

#[test]
fn matrix_boringtun_both_namespaces() {
    cell("boringtun-cli", Shape::Both);
}

#[test]
fn matrix_boringtun_interface_in_init() {
    cell("boringtun-cli", Shape::InterfaceInit);
}
