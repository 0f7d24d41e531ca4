//! Where `post_setup` runs. A RON configuration's runs where the NixOS module runs postSetup:
//! right after the link is up, before any peer or route (the module's peers are units started
//! after the interface's), so a postSetup written for the module keeps working. A wg-quick
//! `.conf`'s `PostUp` keeps wg-quick's place: after everything (`post_setup_at: Last` in RON, which
//! `wg-exec convert` writes). Plans on the fake kernel, then
//! the shape users write (no namespace options) for real on wireguard-go in a test namespace.

mod support;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use support::conf::{interface, peer};
use support::*;
use wg_exec::config::{self, PostSetupAt, RouteTables};
use wg_exec::executor::{self, NoWatch};
use wg_exec::plan;
use wg_exec_steps::fake::FakeKernel;
use wg_exec_steps::{KernelError, StepKind};

const PUB: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const PRIV: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

fn ron() -> config::Config {
    let text = format!(
        r#"(
    ips: ["192.0.2.1/24"],
    private_key: "{PRIV}",
    post_setup: "ip route add 198.51.100.0/24 dev $DEVICE",
    dns: ["192.0.2.53"],
    peers: [(public_key: "{PUB}", allowed_ips: ["198.51.100.0/24"], endpoint: "203.0.113.2:51820")],
)"#
    );
    config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        &text,
        &RouteTables::builtin(),
    )
    .unwrap()
    .0
}

fn conf() -> config::Config {
    let text = format!(
        "[Interface]\nPrivateKey = {PRIV}\nAddress = 192.0.2.1/24\nDNS = 192.0.2.53\nPostUp = ip route add 198.51.100.0/24 dev %i\n\n\
         [Peer]\nPublicKey = {PUB}\nAllowedIPs = 198.51.100.0/24\nEndpoint = 203.0.113.2:51820\n"
    );
    config::parse(
        "wg0",
        Path::new("/etc/wireguard/wg0.conf"),
        &text,
        &RouteTables::builtin(),
    )
    .unwrap()
    .0
}

fn kinds(p: &plan::Plan) -> Vec<StepKind> {
    p.iter().map(|s| s.kind()).collect()
}

#[test]
fn a_ron_post_setup_runs_right_after_link_up_before_peers_and_routes() {
    let cfg = ron();
    assert_eq!(cfg.post_setup_at, PostSetupAt::LinkUp);
    let k = kinds(&plan::up(&cfg));
    let at = |kind| k.iter().position(|x| *x == kind).unwrap();
    assert_eq!(at(StepKind::PostSetup), at(StepKind::LinkUp) + 1, "{k:?}");
    assert!(at(StepKind::PostSetup) < at(StepKind::PeerSet), "{k:?}");
    assert!(at(StepKind::PostSetup) < at(StepKind::Dns), "{k:?}");
    assert!(at(StepKind::PostSetup) < at(StepKind::Routes), "{k:?}");
    // --print says so too: the hook's line right after `ip link set dev wg0 up`.
    let printed = executor::print(&plan::up(&cfg));
    assert!(
        printed.contains(
            "ip link set dev wg0 up\nip route add 198.51.100.0/24 dev $DEVICE\nwg set wg0 peer"
        ),
        "{printed}"
    );
}

#[test]
fn a_conf_post_up_runs_last_where_wg_quick_runs_it() {
    let cfg = conf();
    assert_eq!(cfg.post_setup_at, PostSetupAt::Last);
    let k = kinds(&plan::up(&cfg));
    assert_eq!(k.last(), Some(&StepKind::PostSetup), "{k:?}");
    let printed = executor::print(&plan::up(&cfg));
    assert!(
        printed.ends_with("ip route add 198.51.100.0/24 dev wg0\n"),
        "{printed}"
    );
}

#[test]
fn post_setup_at_last_in_ron_is_wg_quicks_place_and_convert_writes_it() {
    let text = format!(
        r#"(private_key: "{PRIV}", post_setup: "true", post_setup_at: Last, peers: [(public_key: "{PUB}", allowed_ips: ["198.51.100.0/24"])])"#
    );
    let (cfg, _) = config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        &text,
        &RouteTables::builtin(),
    )
    .unwrap();
    assert_eq!(cfg.post_setup_at, PostSetupAt::Last);
    let k = kinds(&plan::up(&cfg));
    assert_eq!(k.last(), Some(&StepKind::PostSetup), "{k:?}");
    // An unknown place is an error naming the field.
    let bad = text.replace("post_setup_at: Last", "post_setup_at: Later");
    let err = config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        &bad,
        &RouteTables::builtin(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("/etc/wg-exec/wg0.ron:1:"), "{err}");
    assert!(err.contains("Later"), "{err}");
}

#[test]
fn a_failing_ron_post_setup_rolls_back_what_came_before_it_and_touches_no_peer() {
    let cfg = ron();
    let mut probe = FakeKernel::new();
    executor::up(
        &mut plan::up(&cfg),
        &mut probe,
        &AtomicBool::new(false),
        &mut NoWatch,
    )
    .unwrap();
    let hook = probe
        .calls
        .iter()
        .position(|c| c.starts_with("run_hook"))
        .unwrap();
    assert!(
        !probe.calls[..hook].iter().any(|c| c.starts_with("peer")
            || c.starts_with("route_replace")
            || c.starts_with("dns_set")),
        "{:?}",
        probe.calls
    );
    let mut k = FakeKernel::new();
    let before = k.state.clone();
    k.fail_call(hook + 1, KernelError::new("exit 1"));
    let err = executor::up(
        &mut plan::up(&cfg),
        &mut k,
        &AtomicBool::new(false),
        &mut NoWatch,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("failed at step 'post_setup'"), "{err}");
    assert!(
        err.contains("rolled back: up, key, addresses and link add"),
        "{err}"
    );
    assert_eq!(k.state, before);
    assert!(
        !k.calls.iter().any(|c| c.starts_with("peer")),
        "{:?}",
        k.calls
    );
}

/// The NixOS module's case, for real: a postSetup that adds a route equal to a peer's allowed
/// IP (which the module's peer units then replace). It used to run after wg-exec's own routes,
/// fail with "File exists" and roll the whole up back. The plain shape: no namespace options,
/// wg-exec run inside the test's namespace, wireguard-go.
#[test]
fn a_ron_post_setup_adding_a_route_equal_to_an_allowed_ip_comes_up_and_goes_down() {
    if !real_environment("post_setup_route") {
        return;
    }
    let h = Host::new("p");
    let (ka, _) = h.keys.private("a");
    let (_, pb) = h.keys.private("b");
    let cfg = h.keys.write("p.ron", &route_hook_config(&ka, &pb));
    let log = ok(h.op("up", &cfg));
    let routes = h.ns.ip("-4 route show 198.51.100.0/24");
    assert!(routes.contains(&format!("dev {}", h.ia)), "{routes}\n{log}");
    let dump = h.ns.wg_dump(&h.ia);
    assert_eq!(dump.len(), 2, "{dump:?}");
    assert_eq!(dump[1][3], "198.51.100.0/24");
    ok(h.op("down", &cfg));
    assert_eq!(h.ns.snapshot(), h.before);
    assert!(!socket_exists(&h.ia));
    assert_eq!(wireguard_go_processes(&h.ia), 0);
}

/// The same hook as a wg-quick `.conf`'s PostUp runs where wg-quick runs it, after the routes:
/// the route exists by then and `ip route add` fails, as it does under wg-quick; the up is
/// rolled back and leaves nothing.
#[test]
fn the_same_hook_as_a_conf_post_up_runs_after_the_routes() {
    if !real_environment("post_up_route") {
        return;
    }
    let h = Host::new("q");
    let (ka, _) = h.keys.private("a");
    let (_, pb) = h.keys.private("b");
    let cfg = h.keys.write(
        "q.conf",
        &format!(
            "[Interface]\nPrivateKey = {}\nAddress = 192.0.2.1/24\nMTU = 1420\nPostUp = ip route add 198.51.100.0/24 dev %i\n\n\
             [Peer]\nPublicKey = {pb}\nAllowedIPs = 198.51.100.0/24\nEndpoint = 203.0.113.2:51820\n",
            h.key_text(&ka)
        ),
    );
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = h.op("up", &cfg);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed at step 'post_setup'"), "{err}");
    assert!(err.contains("rolled back: route"), "{err}");
    assert_eq!(h.ns.snapshot(), h.before);
    assert_eq!(wireguard_go_processes(&h.ia), 0);
}

/// The same as a non-root unit user with only CAP_NET_ADMIN as an ambient capability (the
/// package's non-root drop-in): the hook inherits it, adds the route, and the up comes up.
#[test]
fn a_ron_post_setup_adding_a_route_equal_to_an_allowed_ip_comes_up_as_a_unit_user() {
    if !real_environment("post_setup_route_unit_user") {
        return;
    }
    let h = Host::new("u");
    let (ka, _) = h.keys.private("a");
    let (_, pb) = h.keys.private("b");
    let cfg = h.keys.write("u.ron", &route_hook_config(&ka, &pb));
    let wg = Wg::on(Who::UnitUser(&["net_admin"]), &h, &cfg);
    let out = wg.run("up");
    assert!(out.status.success(), "up: {}", text(&out.stderr));
    let routes = h.ns.ip("-4 route show 198.51.100.0/24");
    assert!(routes.contains(&format!("dev {}", h.ia)), "{routes}");
    let out = wg.run("down");
    assert!(out.status.success(), "down: {}", text(&out.stderr));
    assert_eq!(h.ns.snapshot(), h.before);
    assert_eq!(wireguard_go_processes(&h.ia), 0);
}

/// The NixOS module's case: a post_setup adding a route equal to the peer's allowed IP.
fn route_hook_config(key_file: &Path, peer_public: &str) -> String {
    interface(
        &["192.0.2.1/24"],
        key_file,
        "post_setup: \"ip route add 198.51.100.0/24 dev $DEVICE\",",
        &[peer(
            peer_public,
            &["198.51.100.0/24"],
            "endpoint: \"203.0.113.2:51820\"",
        )],
    )
}
