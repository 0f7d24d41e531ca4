//! The rich configuration of the fake-kernel tests: both namespaces, MTU, two addresses, a
//! generated key file, three peers (a psk, a host-name endpoint), routes in table 1234 with a
//! metric, all four hooks; and a fake kernel ready for it.

use std::path::Path;
use wg_exec::config::{self, RouteTables};
use wg_exec_steps::fake::FakeKernel;

pub const RICH: &str = r#"
Interface(
    ips: ["192.0.2.1/24", "2001:db8::1/64"],
    private_key_file: "/keys/wg0.key",
    generate_private_key_file: true,
    listen_port: 51820,
    mtu: 1380,
    fwmark: "0x6e6978",
    table: "1234",
    metric: 50,
    socket_namespace: "underlay",
    interface_namespace: "tunnel",
    pre_setup: "echo pre $DEVICE",
    post_setup: ["echo post", "true"],
    pre_shutdown: "echo pre-down",
    post_shutdown: "echo post-down",
    backend: Kernel,
    peers: [
        Peer(
            public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
            preshared_key_file: "/keys/psk",
            allowed_ips: ["198.51.100.0/24", "2001:db8:1::/48"],
            endpoint: "peer1.example:51820",
            persistent_keepalive: 25,
        ),
        Peer(
            name: "second",
            public_key: "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=",
            allowed_ips: ["203.0.113.7/32"],
            endpoint: "203.0.113.7:51820",
        ),
        Peer(
            public_key: "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=",
            allowed_ips: ["198.18.0.0/15"],
        ),
    ],
)
"#;

pub fn rich() -> config::Config {
    config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        RICH,
        &RouteTables::builtin(),
    )
    .expect("the rich configuration is valid")
    .0
}

pub fn fresh_kernel() -> FakeKernel {
    let mut k = FakeKernel::new();
    k.add_namespace("underlay");
    k.add_namespace("tunnel");
    k.put_key_file("/keys/psk", 9);
    k.hosts
        .insert("peer1.example".into(), "198.51.100.1".parse().unwrap());
    k
}
