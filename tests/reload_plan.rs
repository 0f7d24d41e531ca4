//! Reload against the fake kernel: the plan of a rich change has every kind of reload step in
//! the order that leaves no gap, an unchanged configuration plans nothing, a failure at every
//! call of the reload leaves the interface exactly as before it, and options that cannot
//! change live are named.

mod support;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use support::rich::{fresh_kernel, rich, RICH};
use wg_exec::config::{self, RouteTables};
use wg_exec::executor::{self, NoWatch};
use wg_exec::journal::applied::Applied;
use wg_exec::plan;
use wg_exec::plan::reload::{self, Live};
use wg_exec_steps::fake::FakeKernel;
use wg_exec_steps::{KernelError, Netns, StepKind};

/// The rich configuration after an edit of nearly everything that can change live: listen
/// port, fwmark, MTU, an address replaced, the first peer's keepalive and endpoint changed and
/// a prefix taken from it by the third, the second peer removed, a fourth added, routes with it,
/// and a new private key file.
fn edited() -> String {
    RICH.replace("listen_port: 51820", "listen_port: 51821")
        .replace("fwmark: \"0x6e6978\"", "fwmark: \"0x77\"")
        .replace("mtu: 1380", "mtu: 1400")
        .replace("\"2001:db8::1/64\"", "\"2001:db8::2/64\"")
        .replace("/keys/wg0.key", "/keys/new.key")
        .replace("persistent_keepalive: 25", "persistent_keepalive: 10")
        .replace("peer1.example:51820", "198.51.100.9:51820")
        .replace(
            "allowed_ips: [\"198.51.100.0/24\", \"2001:db8:1::/48\"]",
            "allowed_ips: [\"198.51.100.0/24\"]",
        )
        .replace(
            "allowed_ips: [\"198.18.0.0/15\"]",
            "allowed_ips: [\"198.18.0.0/15\", \"2001:db8:1::/48\"]",
        )
        .replace(
            "        Peer(
            name: \"second\",
            public_key: \"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\",
            allowed_ips: [\"203.0.113.7/32\"],
            endpoint: \"203.0.113.7:51820\",
        ),",
            "        Peer(
            name: \"fourth\",
            public_key: \"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\",
            allowed_ips: [\"203.0.113.8/32\"],
        ),",
        )
}

fn parse(text: &str) -> config::Config {
    config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        text,
        &RouteTables::builtin(),
    )
    .expect("valid")
    .0
}

/// The rich configuration up on a fresh fake kernel, with the new key file in place.
fn up() -> FakeKernel {
    let mut k = fresh_kernel();
    k.put_key_file("/keys/new.key", 0x42);
    let mut steps = plan::up(&rich());
    executor::up(&mut steps, &mut k, &AtomicBool::new(false), &mut NoWatch).unwrap();
    k
}

fn live(k: &mut FakeKernel) -> Live {
    reload::read_live(k, &Netns::Named("tunnel".into()), "wg0")
        .unwrap()
        .expect("the link is there")
}

#[test]
fn an_unchanged_configuration_plans_nothing() {
    let mut k = up();
    let l = live(&mut k);
    let calls = k.calls.len();
    let p = reload::plan(&rich(), &Applied::of(&rich()), &l, &mut k).unwrap();
    assert!(p.steps.is_empty(), "{}", executor::print(&p.steps));
    // Planning read the key files only: nothing was sent to the device.
    assert!(k.calls[calls..]
        .iter()
        .all(|c| c.starts_with("read_secret_file") || c.starts_with("file_exists")));
}

#[test]
fn a_rich_edit_plans_every_kind_in_the_order_that_leaves_no_gap() {
    let mut k = up();
    let l = live(&mut k);
    let cfg = parse(&edited());
    let p = reload::plan(&cfg, &Applied::of(&rich()), &l, &mut k).unwrap();
    let kinds: Vec<StepKind> = p.steps.iter().map(|s| s.kind()).collect();
    assert_eq!(
        kinds,
        [
            StepKind::DeviceSet,
            StepKind::Mtu,
            StepKind::Addresses,
            StepKind::PeerSet,
            StepKind::PeerUpdate,
            StepKind::Routes,
            StepKind::PeerUpdate,
            StepKind::PeerRemove,
            StepKind::RoutesRemove,
            StepKind::AddressesRemove,
            StepKind::KeyRotate,
        ]
    );
    let printed = executor::print(&p.steps);
    assert_eq!(
        printed,
        "ip netns exec tunnel wg set wg0 listen-port 51821 fwmark 0x77
ip -n tunnel link set dev wg0 mtu 1400
ip -n tunnel address add 2001:db8::2/64 dev wg0
ip netns exec tunnel wg set wg0 peer HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw= allowed-ips 203.0.113.8/32
ip netns exec tunnel wg set wg0 peer gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA= allowed-ips +2001:db8:1::/48
ip -n tunnel route replace 203.0.113.8/32 dev wg0 table 1234 metric 50
ip netns exec tunnel wg set wg0 peer xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= endpoint 198.51.100.9:51820 persistent-keepalive 10 allowed-ips 198.51.100.0/24
ip netns exec tunnel wg set wg0 peer TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0= remove
ip -n tunnel route del 203.0.113.7/32 dev wg0 table 1234 metric 50
ip -n tunnel address del 2001:db8::1/64 dev wg0
ip netns exec tunnel wg set wg0 private-key /keys/new.key
"
    );
    // The key change is said.
    assert!(p
        .notes
        .iter()
        .any(|n| n.contains("every peer's current session ends")));

    // Applied: the device is as the edited configuration says, the moved prefix with its new
    // owner only, the unchanged route untouched.
    let mut steps = p.steps;
    executor::up(&mut steps, &mut k, &AtomicBool::new(false), &mut NoWatch).unwrap();
    let link = &k.state.links[&(Netns::Named("tunnel".into()), "wg0".to_string())];
    assert_eq!(
        (link.mtu, link.listen_port, link.fwmark),
        (1400, 51821, 0x77)
    );
    assert_eq!(link.peers.len(), 3);
    let owners: Vec<String> = link
        .peers
        .values()
        .filter(|p| p.allowed_ips.contains(&"2001:db8:1::/48".parse().unwrap()))
        .map(|p| p.public_key.to_base64())
        .collect();
    assert_eq!(owners, ["gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA="]);
    let first = &link.peers[&wg_exec_steps::Key::from_base64(
        "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
        false,
    )
    .unwrap()];
    assert_eq!(first.persistent_keepalive, Some(10));
    assert_eq!(first.endpoint, Some("198.51.100.9:51820".parse().unwrap()));
    // Nothing more to do afterwards.
    let l = live(&mut k);
    let again = reload::plan(&cfg, &Applied::of(&cfg), &l, &mut k).unwrap();
    assert!(again.steps.is_empty(), "{}", executor::print(&again.steps));
}

/// A peer that loses one prefix and takes another from a peer that loses it too: both are
/// replaced, and undoing the first must give the prefix back to the second.
fn swapped() -> String {
    RICH.replace(
        "allowed_ips: [\"198.51.100.0/24\", \"2001:db8:1::/48\"]",
        "allowed_ips: [\"198.51.100.0/24\", \"198.18.0.0/15\"]",
    )
    .replace(
        "allowed_ips: [\"198.18.0.0/15\"]",
        "allowed_ips: [\"203.0.113.9/32\"]",
    )
}

#[test]
fn a_failure_at_every_call_of_a_reload_leaves_the_interface_as_it_was() {
    every_call(&parse(&edited()), 11);
    every_call(&parse(&swapped()), 3);
}

fn every_call(cfg: &config::Config, at_least: usize) {
    let cfg = cfg.clone();
    // Count the reload's calls once.
    let mut k = up();
    let l = live(&mut k);
    let mut steps = reload::plan(&cfg, &Applied::of(&rich()), &l, &mut k)
        .unwrap()
        .steps;
    let start = k.calls.len();
    executor::up(&mut steps, &mut k, &AtomicBool::new(false), &mut NoWatch).unwrap();
    let total = k.calls.len() - start;
    assert!(total >= at_least, "{total}");
    for n in 1..=total {
        let mut k = up();
        let l = live(&mut k);
        let mut steps = reload::plan(&cfg, &Applied::of(&rich()), &l, &mut k)
            .unwrap()
            .steps;
        let before = k.state.clone();
        let failing = k.calls.len() + n;
        k.fail_call(failing, KernelError::from_errno(16, Some("injected")));
        let err = executor::up(&mut steps, &mut k, &AtomicBool::new(false), &mut NoWatch)
            .expect_err("an injected failure fails the reload");
        assert!(
            !err.incomplete(),
            "call {n} ({}): {err}",
            k.calls[failing - 1]
        );
        assert!(err.to_string().contains("injected"), "{err}");
        assert_eq!(
            k.state,
            before,
            "call {n} ({}): {err}",
            k.calls[failing - 1]
        );
    }
}

#[test]
fn options_that_cannot_change_live_are_named() {
    let recorded = Applied::of(&rich());
    let cfg = parse(
        &RICH
            .replace("socket_namespace: \"underlay\",", "")
            .replace("backend: Kernel,", "backend: Userspace,"),
    );
    assert_eq!(
        reload::not_live(&cfg, &recorded),
        [
            "socket_namespace (underlay -> none)",
            "backend (Kernel -> Userspace)"
        ]
    );
    assert!(reload::not_live(&rich(), &recorded).is_empty());
}

#[test]
fn an_implementation_that_cannot_update_in_place_is_said_to_restart_sessions() {
    let mut k = up();
    k.no_update_in_place = true;
    let l = live(&mut k);
    let cfg = parse(&RICH.replace("persistent_keepalive: 25", "persistent_keepalive: 10"));
    let p = reload::plan(&cfg, &Applied::of(&rich()), &l, &mut k).unwrap();
    assert_eq!(p.steps.len(), 1);
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("cannot update a peer in place") && n.contains("session restarts")),
        "{:?}",
        p.notes
    );
}

/// The reload's decisions, one edit of the rich configuration (or one change made by hand on the
/// live device) per row: the kinds of steps planned, in order, and a note that must be said.
#[test]
fn reload_decisions_table() {
    type ByHand = fn(&mut FakeKernel);
    let none: ByHand = |_| {};
    let rows: Vec<(&str, String, ByHand, Vec<StepKind>, &str)> = vec![
        ("unchanged", RICH.to_string(), none, vec![], ""),
        (
            "keepalive",
            RICH.replace("persistent_keepalive: 25", "persistent_keepalive: 10"),
            none,
            vec![StepKind::PeerUpdate],
            "",
        ),
        (
            "a new prefix: the peer gains it, then its route",
            RICH.replace(
                "allowed_ips: [\"203.0.113.7/32\"]",
                "allowed_ips: [\"203.0.113.7/32\", \"203.0.113.99/32\"]",
            ),
            none,
            vec![StepKind::PeerUpdate, StepKind::Routes],
            "",
        ),
        (
            "a prefix goes: the peer loses it, then its route",
            RICH.replace(
                "allowed_ips: [\"198.51.100.0/24\", \"2001:db8:1::/48\"]",
                "allowed_ips: [\"198.51.100.0/24\"]",
            ),
            none,
            vec![StepKind::PeerUpdate, StepKind::RoutesRemove],
            "",
        ),
        (
            "a larger MTU comes early",
            RICH.replace("mtu: 1380", "mtu: 1400"),
            none,
            vec![StepKind::Mtu],
            "",
        ),
        (
            "the listen port",
            RICH.replace("listen_port: 51820", "listen_port: 51821"),
            none,
            vec![StepKind::DeviceSet],
            "",
        ),
        (
            "no listen port any more: kept, said",
            RICH.replace("listen_port: 51820,", ""),
            none,
            vec![],
            "listen_port is no longer set",
        ),
        (
            "no MTU any more: kept, said",
            RICH.replace("mtu: 1380,", ""),
            none,
            vec![],
            "mtu is no longer set: the link keeps MTU 1380",
        ),
        (
            "an endpoint no longer configured: kept, said",
            RICH.replace("endpoint: \"203.0.113.7:51820\",", ""),
            none,
            vec![],
            "endpoint 203.0.113.7:51820 is no longer configured",
        ),
        (
            "a peer added by hand is removed",
            RICH.to_string(),
            |k| {
                let key = wg_exec_steps::Key::from_bytes([7; 32], false);
                k.state
                    .links
                    .get_mut(&(Netns::Named("tunnel".into()), "wg0".to_string()))
                    .unwrap()
                    .peers
                    .insert(
                        key.clone(),
                        wg_exec_steps::PeerSettings {
                            public_key: key,
                            preshared_key: None,
                            endpoint: None,
                            persistent_keepalive: None,
                            allowed_ips: vec!["192.0.2.200/32".parse().unwrap()],
                        },
                    );
            },
            vec![StepKind::PeerRemove],
            "added by hand?): it is removed",
        ),
        (
            "a route deleted by hand is added again",
            RICH.to_string(),
            |k| {
                let gone = k
                    .state
                    .routes
                    .iter()
                    .find(|(_, _, r)| r.dst == "203.0.113.7/32".parse().unwrap())
                    .cloned()
                    .unwrap();
                k.state.routes.remove(&gone);
            },
            vec![StepKind::Routes],
            "",
        ),
        (
            "a roamed endpoint is left alone",
            RICH.to_string(),
            |k| {
                for p in k
                    .state
                    .links
                    .get_mut(&(Netns::Named("tunnel".into()), "wg0".to_string()))
                    .unwrap()
                    .peers
                    .values_mut()
                {
                    p.endpoint = Some("192.0.2.77:4444".parse().unwrap());
                }
            },
            vec![],
            "",
        ),
        (
            "a peer goes, then its route",
            RICH.replace(
                "        Peer(
            name: \"second\",
            public_key: \"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\",
            allowed_ips: [\"203.0.113.7/32\"],
            endpoint: \"203.0.113.7:51820\",
        ),",
                "",
            ),
            none,
            vec![StepKind::PeerRemove, StepKind::RoutesRemove],
            "",
        ),
        (
            "the preshared key file changed",
            RICH.to_string(),
            |k| k.put_key_file("/keys/psk", 10),
            vec![StepKind::PeerUpdate],
            "",
        ),
    ];
    for (what, text, by_hand, kinds, note) in rows {
        let mut k = up();
        by_hand(&mut k);
        let l = live(&mut k);
        let cfg = parse(&text);
        let p = reload::plan(&cfg, &Applied::of(&rich()), &l, &mut k).unwrap();
        let got: Vec<StepKind> = p.steps.iter().map(|s| s.kind()).collect();
        assert_eq!(got, kinds, "{what}: {}", executor::print(&p.steps));
        match note {
            "" => assert!(p.notes.is_empty(), "{what}: {:?}", p.notes),
            n => assert!(
                p.notes.iter().any(|m| m.contains(n)),
                "{what}: {:?}",
                p.notes
            ),
        }
        // Every step acts where a reload's capabilities allow.
        let needs = wg_exec::plan::needs(&p.steps);
        let allowed = reload::needs(&cfg);
        assert!(
            needs.namespaces.is_subset(&allowed.namespaces) && !needs.module && !needs.hooks,
            "{what}: {needs:?} beyond {allowed:?}"
        );
        // Applied, nothing is left to do.
        let mut steps = p.steps;
        executor::up(&mut steps, &mut k, &AtomicBool::new(false), &mut NoWatch).unwrap();
        let l = live(&mut k);
        let again = reload::plan(&cfg, &Applied::of(&cfg), &l, &mut k).unwrap();
        assert!(
            again.steps.is_empty(),
            "{what}: {}",
            executor::print(&again.steps)
        );
    }
}

/// The rich edit's steps need no more than a reload of it is given.
#[test]
fn a_reload_needs_what_its_steps_need() {
    let mut k = up();
    let l = live(&mut k);
    let cfg = parse(&edited());
    let p = reload::plan(&cfg, &Applied::of(&rich()), &l, &mut k).unwrap();
    let allowed = reload::needs(&cfg);
    assert_eq!(
        allowed.namespaces,
        [Netns::Named("tunnel".into())].into(),
        "no host name is configured any more: the socket namespace is not needed"
    );
    assert!(wg_exec::plan::needs(&p.steps)
        .namespaces
        .is_subset(&allowed.namespaces));
    // With a host name, it resolves in the socket namespace.
    assert_eq!(
        reload::needs(&rich()).namespaces,
        [
            Netns::Named("tunnel".into()),
            Netns::Named("underlay".into())
        ]
        .into()
    );
}
