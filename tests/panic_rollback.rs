//! A panic inside up or reload still rolls back and exits 1 (never 101 with half an
//! interface), proven on the real userspace backend (wireguard-go) in the plain shape: no
//! namespace option, wg-exec run inside a namespace of the test's own. WG_EXEC_FAULT=panic:STEP
//! panics before the step, panic-after:STEP once its work is done. Needs the `fault-injection`
//! feature and root.

mod support;
use std::path::{Path, PathBuf};
use support::conf::{Conf, Peer};
use support::*;

struct Host {
    ns: Netns,
    keys: Keys,
    ia: String,
    cfg: PathBuf,
    private: String,
    before: String,
    _guard: SocketGuard,
}

impl Host {
    fn new() -> Host {
        let ns = Netns::new("p");
        let keys = Keys::new();
        let ia = iface("p");
        let (key_file, _) = keys.private("h");
        let private = std::fs::read_to_string(&key_file)
            .unwrap()
            .trim()
            .to_string();
        let (_, peer) = keys.private("peer");
        let body = Conf::new(&["192.0.2.1/24", "2001:db8:1::1/64"], &key_file)
            .with("listen_port: 51820")
            .peers([Peer::new(&peer, &["198.18.0.0/24", "2001:db8:2::/64"])
                .with("endpoint: \"203.0.113.2:51820\", persistent_keepalive: 25")])
            .render();
        let cfg = keys.write("wg.ron", &body);
        let before = ns.snapshot();
        Host {
            _guard: SocketGuard(ia.clone()),
            ns,
            keys,
            ia,
            cfg,
            private,
            before,
        }
    }

    fn run(&self, env: &str, args: &str) -> std::process::Output {
        wg_exec(
            &format!("{env} ip netns exec {}", self.ns.name),
            &format!("{args} {} --config {}", self.ia, self.cfg.display()),
        )
    }

    /// Nothing left: links, addresses, routes as before; no socket, daemon or journal.
    fn no_trace(&self, what: &str) {
        assert_eq!(self.ns.snapshot(), self.before, "{what}: namespace");
        assert!(!self.ns.has_link(&self.ia), "{what}: link");
        assert!(!socket_exists(&self.ia), "{what}: UAPI socket");
        assert_eq!(wireguard_go_processes(&self.ia), 0, "{what}: wireguard-go");
        assert!(
            !Path::new(&journal_path(&self.ia)).exists(),
            "{what}: journal"
        );
    }
}

#[test]
fn a_panic_at_a_step_of_up_rolls_everything_back_and_exits_1() {
    if !real_environment("panic_rollback_up") {
        return;
    }
    let h = Host::new();
    let _keys = &h.keys;
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
        let out = h.run(&format!("WG_EXEC_FAULT='{fault}'"), "up");
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
        assert!(
            !err.contains(&h.private),
            "{fault}: the private key in {err}"
        );
        h.no_trace(fault);
    }
    // And without a fault it all works.
    ok(h.run("", "up"));
    assert!(h.ns.has_link(&h.ia));
    ok(h.run("", "down"));
    h.no_trace("after a clean up and down");
}

#[test]
fn a_panic_in_reload_rolls_back_to_what_was_up() {
    if !real_environment("panic_rollback_reload") {
        return;
    }
    let h = Host::new();
    ok(h.run("", "up"));
    let up = h.ns.wg_dump(&h.ia);
    let (_, other) = h.keys.private("other");
    let grown = std::fs::read_to_string(&h.cfg).unwrap().replacen(
        "peers: [",
        &format!("peers: [Peer(public_key: \"{other}\", allowed_ips: [\"198.19.0.0/24\"]), "),
        1,
    );
    assert_ne!(grown, std::fs::read_to_string(&h.cfg).unwrap());
    std::fs::write(&h.cfg, grown).unwrap();
    let out = h.run("WG_EXEC_FAULT='panic-after:peer set'", "reload");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed at step 'peer set'"), "{err}");
    assert!(err.contains("internal error: panicked at"), "{err}");
    // The peer is gone again: the device is as the up left it.
    assert_eq!(h.ns.wg_dump(&h.ia), up);
    ok(h.run("", "down"));
    h.no_trace("after down");
}
