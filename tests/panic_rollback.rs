//! A panic inside up or reload still rolls back and exits 1 (never 101 with half an
//! interface), proven on the real userspace backend (wireguard-go) in the plain shape: no
//! namespace option, wg-exec run inside a namespace of the test's own. WG_EXEC_FAULT=panic:STEP
//! panics before the step, panic-after:STEP once its work is done. Needs the `fault-injection`
//! feature and root.

mod support;
use std::path::PathBuf;
use support::conf::{Conf, Peer};
use support::*;

/// The host, its configuration (one peer with an endpoint) and its private key's text.
fn host() -> (Host, PathBuf, String) {
    let h = Host::new("p");
    let (key_file, _) = h.keys.private("h");
    let private = h.key_text(&key_file);
    let (_, peer) = h.keys.private("peer");
    let body = Conf::new(&["192.0.2.1/24", "2001:db8:1::1/64"], &key_file)
        .with("listen_port: 51820")
        .peers([Peer::new(&peer, &["198.18.0.0/24", "2001:db8:2::/64"])
            .with("endpoint: \"203.0.113.2:51820\", persistent_keepalive: 25")])
        .render();
    let cfg = h.keys.write("wg.ron", &body);
    (h, cfg, private)
}

#[test]
fn a_panic_at_a_step_of_up_rolls_everything_back_and_exits_1() {
    if !real_environment("panic_rollback_up") {
        return;
    }
    let (h, cfg, private) = host();
    for (fault, step, undone) in [
        ("panic:link add", "link add", "nothing had been changed yet"),
        ("panic-after:link add", "link add", "rolled back: link add"),
        ("panic:key", "key", "rolled back: addresses and link add"),
        (
            "panic-after:peer set",
            "peer set",
            "rolled back: peer set, ",
        ),
        (
            "panic-after:route",
            "route",
            "rolled back: route, peer set, ",
        ),
    ] {
        let out = h.op_with(&format!("WG_EXEC_FAULT='{fault}'"), "up", &cfg);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{fault}: {err}");
        assert!(
            err.contains(&format!("failed at step '{step}'")),
            "{fault}: {err}"
        );
        assert!(
            err.contains("internal error: panicked at src/faults.rs:"),
            "{fault}: {err}"
        );
        assert!(err.contains(undone), "{fault}: {err}");
        assert!(!err.contains(&private), "{fault}: the private key in {err}");
        h.assert_no_trace(fault);
    }
    // And without a fault it all works.
    ok(h.op("up", &cfg));
    assert!(h.ns.has_link(&h.ia));
    ok(h.op("down", &cfg));
    h.assert_no_trace("after a clean up and down");
}

#[test]
fn a_panic_in_reload_rolls_back_to_what_was_up() {
    if !real_environment("panic_rollback_reload") {
        return;
    }
    let (h, cfg, _) = host();
    ok(h.op("up", &cfg));
    let up = h.ns.wg_dump(&h.ia);
    let (_, other) = h.keys.private("other");
    let grown = std::fs::read_to_string(&cfg).unwrap().replacen(
        "peers: [",
        &format!("peers: [Peer(public_key: \"{other}\", allowed_ips: [\"198.19.0.0/24\"]), "),
        1,
    );
    assert_ne!(grown, std::fs::read_to_string(&cfg).unwrap());
    std::fs::write(&cfg, grown).unwrap();
    let out = h.op_with("WG_EXEC_FAULT='panic-after:peer set'", "reload", &cfg);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed at step 'peer set'"), "{err}");
    assert!(err.contains("internal error: panicked at"), "{err}");
    // The peer is gone again: the device is as the up left it.
    assert_eq!(h.ns.wg_dump(&h.ia), up);
    ok(h.op("down", &cfg));
    h.assert_no_trace("after down");
}
