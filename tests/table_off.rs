//! `table: "off"` has wg-quick's meaning (`Table = off`): no routes at all, the same as
//! `allowed_ips_as_routes: false`; a /0 allowed IP then makes no full tunnel and no warning
//! about table main. It used to be refused as an unknown routing table, so NixOS's
//! `table = "off"` evaluated and then every start failed.

use std::path::Path;
use wg_exec::config::derived;
use wg_exec::config::{self, RouteTables};
use wg_exec::{executor, plan};
use wg_exec_steps::StepKind;

const PUB: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const PRIV: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

fn ron(extra: &str) -> (config::Config, Vec<config::Warning>) {
    let text = format!(
        r#"(
    ips: ["192.0.2.1/24"],
    private_key: "{PRIV}",
    {extra}
    peers: [(public_key: "{PUB}", allowed_ips: ["198.51.100.0/24", "0.0.0.0/0"], endpoint: "203.0.113.2:51820")],
)"#
    );
    config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        &text,
        &RouteTables::builtin(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Whether a warning says that a /0 becomes a route in table main.
fn about_main(warnings: &[config::Warning]) -> bool {
    warnings
        .iter()
        .any(|w| w.message.contains("becomes a route in table main"))
}

fn printed(cfg: &config::Config) -> String {
    executor::print(&plan::up(cfg))
}

#[test]
fn ron_table_off_means_no_routes_like_allowed_ips_as_routes_false() {
    for spelling in ["off", "Off", "OFF"] {
        let (cfg, warnings) = ron(&format!("table: \"{spelling}\","));
        assert!(!cfg.allowed_ips_as_routes, "{spelling}");
        assert!(!cfg.full_tunnel(), "{spelling}");
        assert!(derived::routes(&cfg).is_empty());
        let kinds: Vec<StepKind> = plan::up(&cfg).iter().map(|s| s.kind()).collect();
        assert!(!kinds.contains(&StepKind::Routes), "{kinds:?}");
        assert!(!about_main(&warnings), "{warnings:?}");
        let (same, _) = ron("allowed_ips_as_routes: false, table: \"main\",");
        assert_eq!(printed(&cfg), printed(&same));
        assert!(!printed(&cfg).contains("ip route"), "{}", printed(&cfg));
    }
    // Without it: routes in main, and the warning about the /0.
    let (cfg, warnings) = ron("table: \"main\",");
    assert!(printed(&cfg).contains("ip route replace 198.51.100.0/24 dev wg0 table main"));
    assert!(about_main(&warnings), "{warnings:?}");
}

#[test]
fn conf_table_off_means_the_same() {
    let text = format!(
        "[Interface]\nPrivateKey = {PRIV}\nAddress = 192.0.2.1/24\nTable = off\n\n[Peer]\nPublicKey = {PUB}\nAllowedIPs = 198.51.100.0/24, 0.0.0.0/0\nEndpoint = 203.0.113.2:51820\n"
    );
    let (cfg, _) = config::parse(
        "wg0",
        Path::new("/etc/wireguard/wg0.conf"),
        &text,
        &RouteTables::builtin(),
    )
    .unwrap();
    assert!(!cfg.allowed_ips_as_routes);
    assert!(!cfg.full_tunnel());
    assert!(!printed(&cfg).contains("ip route"), "{}", printed(&cfg));
}
