//! Loading configurations: the README's example, defaults, optional values written both ways,
//! table names, endpoints and the warnings.

use std::path::Path;
use wg_exec::config::{self, parse_endpoint, Config, RouteTables, Warning};
use wg_exec_steps::{Backend, SecretSource};

fn load(text: &str) -> (Config, Vec<Warning>) {
    config::parse("wg0", Path::new("t.ron"), text, &RouteTables::builtin())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_readme_example_loads_with_every_value() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wg0.ron");
    let (c, warnings) = config::load("wg0", &path, &RouteTables::builtin()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.ips.len(), 2);
    assert_eq!(
        c.private_key,
        SecretSource::File("/etc/wg-exec/keys/wg0.key".into())
    );
    assert!(c.generate_private_key_file);
    assert_eq!(c.listen_port, Some(51820));
    assert_eq!(c.mtu, Some(1420));
    assert_eq!(c.fwmark, Some(0x6e6978));
    assert_eq!((c.table.id, c.table.label.as_str()), (254, "main"));
    assert_eq!(c.metric, Some(50));
    assert_eq!(c.socket_namespace.as_deref(), Some("underlay"));
    assert_eq!(c.interface_namespace.as_deref(), Some("tunnel"));
    assert_eq!(c.pre_setup, ["echo starting $DEVICE"]);
    assert_eq!(c.post_shutdown, ["echo stopped $DEVICE"]);
    assert!(c.post_setup.is_empty() && c.pre_shutdown.is_empty());
    assert!(c.allowed_ips_as_routes);
    assert_eq!(
        c.backend,
        Backend::Auto {
            userspace: "wireguard-go".into()
        }
    );
    let p = &c.peers[0];
    assert_eq!(p.name, "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=");
    assert_eq!(
        p.endpoint.as_ref().unwrap().to_string(),
        "demo.wireguard.io:12913"
    );
    assert_eq!(p.persistent_keepalive, Some(25));
    assert_eq!(p.refresh_seconds(c.dynamic_endpoint_refresh_seconds), 0);
}

#[test]
fn defaults_match_the_module() {
    let (c, _) = load(r#"(private_key_file: "/k")"#);
    assert!(c.ips.is_empty() && c.peers.is_empty());
    assert_eq!(c.table.id, 254);
    assert!(c.allowed_ips_as_routes);
    assert!(!c.generate_private_key_file);
    assert_eq!(
        (c.listen_port, c.mtu, c.metric, c.fwmark),
        (None, None, None, None)
    );
    assert_eq!(c.dynamic_endpoint_refresh_seconds, 0);
    assert!(c.socket_namespace.is_none() && c.interface_namespace.is_none());
}

#[test]
fn optional_values_bare_or_in_some_and_fwmark_as_number() {
    let (a, _) = load(
        r#"Interface(private_key_file: "/k", mtu: 1420, listen_port: Some(7), fwmark: 42, table: 1000)"#,
    );
    assert_eq!(
        (a.mtu, a.listen_port, a.fwmark, a.table.id),
        (Some(1420), Some(7), Some(42), 1000)
    );
    let (b, _) = load(
        r#"Interface(private_key_file: "/k", mtu: Some(1420), listen_port: None, fwmark: "off")"#,
    );
    assert_eq!(
        (b.mtu, b.listen_port, b.fwmark),
        (Some(1420), None, Some(0))
    );
}

#[test]
fn table_names_come_from_rt_tables_and_its_d_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rt_tables"), "# comment\n100 vpn\n").unwrap();
    std::fs::create_dir(dir.path().join("rt_tables.d")).unwrap();
    std::fs::write(
        dir.path().join("rt_tables.d/x.conf"),
        "0x200\tother # hex id\n",
    )
    .unwrap();
    let tables = RouteTables::load(&[dir.path()]);
    for (name, id) in [
        ("vpn", 100),
        ("other", 512),
        ("main", 254),
        ("local", 255),
        ("default", 253),
        ("4000000000", 4_000_000_000),
    ] {
        let text = format!(r#"(private_key_file: "/k", table: "{name}")"#);
        let (c, _) = config::parse("wg0", Path::new("t.ron"), &text, &tables).unwrap();
        assert_eq!(c.table.id, id, "{name}");
    }
}

#[test]
fn endpoints_in_every_form() {
    assert_eq!(
        parse_endpoint("vpn.example.org:51820").unwrap().host,
        "vpn.example.org"
    );
    assert_eq!(parse_endpoint("192.0.2.1:1").unwrap().port, 1);
    assert_eq!(
        parse_endpoint("[2001:db8::1]:65535").unwrap().host,
        "2001:db8::1"
    );
    for bad in [
        "nohost",
        "host:",
        "host:65536",
        "[2001:db8::1]",
        "[nothex]:5",
        "bad_host!:5",
        ":5",
    ] {
        assert!(parse_endpoint(bad).is_err(), "{bad}");
    }
}

#[test]
fn overlapping_allowed_ips_between_peers_are_warned_about() {
    let (_, w) = load(
        r#"(private_key_file: "/k", table: "1000", peers: [
            (public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", allowed_ips: ["198.18.0.0/16", "2001:db8::/32"]),
            (name: "b", public_key: "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=", allowed_ips: ["198.18.7.0/24", "198.19.0.0/16"]),
        ])"#,
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].field, "peers[1].allowed_ips[0]");
    assert_eq!(
        w[0].message,
        "198.18.7.0/24 overlaps 198.18.0.0/16 of peers[0] (xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=)"
    );
}

#[test]
fn a_default_route_in_main_is_warned_about_but_not_in_another_table() {
    let peers = r#"peers: [(public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", allowed_ips: ["0.0.0.0/0", "::/0"])]"#;
    let (_, w) = load(&format!(r#"(private_key_file: "/k", {peers})"#));
    assert_eq!(w.len(), 2);
    assert!(w[1]
        .message
        .starts_with("::/0 becomes a route in table main"));
    let (_, w) = load(&format!(r#"(private_key_file: "/k", table: "7", {peers})"#));
    assert!(w.is_empty());
    let (_, w) = load(&format!(
        r#"(private_key_file: "/k", allowed_ips_as_routes: false, {peers})"#
    ));
    assert!(w.is_empty());
}

#[test]
fn ten_thousand_peers_load_quickly_enough_to_be_usable() {
    // Not a timing assertion: this checks that the overlap check and the locator work at scale.
    let mut text = String::from(r#"(private_key_file: "/k", peers: ["#);
    for i in 0..10_000u32 {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&i.to_be_bytes());
        let key = wg_exec_steps::Key::from_bytes(key, false).to_base64();
        text.push_str(&format!(
            "(public_key: \"{key}\", allowed_ips: [\"198.18.{}.{}/32\", \"2001:db8::{:x}/128\"], endpoint: \"198.51.100.{}:51820\"),\n",
            i / 256,
            i % 256,
            i,
            i % 250 + 1
        ));
    }
    text.push_str("])");
    let (c, w) = load(&text);
    assert_eq!(c.peers.len(), 10_000);
    assert!(w.is_empty(), "{:?}", &w[..w.len().min(3)]);
}
