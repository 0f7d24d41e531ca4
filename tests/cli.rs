//! The command line as a user meets it: `--print` output pinned for the README's example and the
//! module's four namespace scenarios, `check`, exit codes and error text for bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn wg_exec() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wg-exec"));
    c.env_remove("RUST_LOG").env_remove("WG_EXEC_CONFIG_DIR");
    c
}

fn run(args: &[&str]) -> Output {
    wg_exec().args(args).output().expect("run wg-exec")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes `body` to a fresh file and returns the directory holding it and its path.
fn config(body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wg1.ron");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    (dir, path)
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wg0.ron")
}

#[test]
fn print_of_the_readme_example() {
    let out = run(&[
        "up",
        "wg0",
        "--config",
        example().to_str().unwrap(),
        "--print",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "\
mkdir -p -m 0755 /etc/wg-exec/keys && { [ -e /etc/wg-exec/keys/wg0.key ] || (umask 077 && wg genkey > /etc/wg-exec/keys/wg0.key); }
modprobe wireguard || true
echo starting $DEVICE
ip -n underlay link add dev wg0 type wireguard || ip netns exec underlay wireguard-go wg0
ip -n underlay link set dev wg0 netns tunnel
ip -n tunnel link set dev wg0 mtu 1420
ip -n tunnel address add 192.0.2.1/24 dev wg0
ip -n tunnel address add 2001:db8::1/64 dev wg0
ip netns exec tunnel wg set wg0 private-key /etc/wg-exec/keys/wg0.key listen-port 51820 fwmark 0x6e6978
ip -n tunnel link set dev wg0 up
ip netns exec tunnel wg set wg0 peer xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= preshared-key /etc/wg-exec/keys/wg0-demo.psk endpoint demo.wireguard.io:12913 persistent-keepalive 25 allowed-ips 192.0.2.0/24,2001:db8:1::/48
ip -n tunnel route replace 192.0.2.0/24 dev wg0 table main metric 50
ip -n tunnel route replace 2001:db8:1::/48 dev wg0 table main metric 50
"
    );
    let out = run(&[
        "down",
        "wg0",
        "--config",
        example().to_str().unwrap(),
        "--print",
    ]);
    assert_eq!(
        text(&out.stdout),
        "ip -n tunnel link del dev wg0\necho stopped $DEVICE\n"
    );
}

#[test]
fn print_needs_no_privileges() {
    // The same plan, printed by an unprivileged user (nobody) with no capabilities at all.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_wg-exec"))
        .args([
            "up",
            "wg0",
            "--config",
            example().to_str().unwrap(),
            "--print",
        ])
        .output();
    let Ok(out) = out else {
        panic!("setpriv (util-linux) is needed for this test");
    };
    if !am_root() {
        // Already unprivileged: setpriv cannot switch users, and need not.
        return;
    }
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 13);
}

fn am_root() -> bool {
    nix::unistd::geteuid().is_root()
}

const SCENARIO: &str = r#"(
    ips: ["192.0.2.1/24", "2001:db8::1/64"],
    private_key: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=",
    NAMESPACES
    peers: [(public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", preshared_key: "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=", allowed_ips: ["192.0.2.2/32"], endpoint: "[2001:db8::2]:51820")],
    backend: Userspace,
)"#;

fn print_scenario(namespaces: &str) -> (String, String) {
    let (_dir, path) = config(&SCENARIO.replace("NAMESPACES", namespaces));
    let out = run(&["up", "wg1", "--config", path.to_str().unwrap(), "--print"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

#[test]
fn print_socket_namespace_only() {
    let (out, err) = print_scenario(r#"socket_namespace: "sock","#);
    assert_eq!(
        out,
        "\
ip netns exec sock wireguard-go wg1
ip -n sock address add 192.0.2.1/24 dev wg1
ip -n sock address add 2001:db8::1/64 dev wg1
ip netns exec sock wg set wg1 private-key <redacted>
ip -n sock link set dev wg1 up
ip netns exec sock wg set wg1 peer xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= preshared-key <redacted> endpoint [2001:db8::2]:51820 allowed-ips 192.0.2.2/32
ip -n sock route replace 192.0.2.2/32 dev wg1 table main
"
    );
    // The inline secrets are warned about and never shown.
    assert!(
        err.contains(":3:18: private_key: the private key is written inline"),
        "{err}"
    );
    assert!(
        err.contains("peers[0].preshared_key: the preshared key is written inline"),
        "{err}"
    );
    for secret in ["yAnz5TF+", "FpCyhws9"] {
        assert!(!out.contains(secret) && !err.contains(secret));
    }
}

#[test]
fn print_interface_namespace_only() {
    let (out, _) = print_scenario(r#"interface_namespace: "tun", mtu: 1280,"#);
    assert_eq!(
        out,
        "\
wireguard-go wg1
ip link set dev wg1 netns tun
ip -n tun link set dev wg1 mtu 1280
ip -n tun address add 192.0.2.1/24 dev wg1
ip -n tun address add 2001:db8::1/64 dev wg1
ip netns exec tun wg set wg1 private-key <redacted>
ip -n tun link set dev wg1 up
ip netns exec tun wg set wg1 peer xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= preshared-key <redacted> endpoint [2001:db8::2]:51820 allowed-ips 192.0.2.2/32
ip -n tun route replace 192.0.2.2/32 dev wg1 table main
"
    );
}

#[test]
fn print_both_namespaces() {
    let (out, _) = print_scenario(r#"socket_namespace: "sock", interface_namespace: "tun","#);
    assert_eq!(
        out,
        "\
ip netns exec sock wireguard-go wg1
ip -n sock link set dev wg1 netns tun
ip -n tun address add 192.0.2.1/24 dev wg1
ip -n tun address add 2001:db8::1/64 dev wg1
ip netns exec tun wg set wg1 private-key <redacted>
ip -n tun link set dev wg1 up
ip netns exec tun wg set wg1 peer xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= preshared-key <redacted> endpoint [2001:db8::2]:51820 allowed-ips 192.0.2.2/32
ip -n tun route replace 192.0.2.2/32 dev wg1 table main
"
    );
}

#[test]
fn print_socket_namespace_with_interface_in_init() {
    let (out, _) = print_scenario(r#"socket_namespace: "sock", interface_namespace: "init","#);
    assert_eq!(
        out,
        "\
ip netns exec sock wireguard-go wg1
ip -n sock link set dev wg1 netns 1
ip address add 192.0.2.1/24 dev wg1
ip address add 2001:db8::1/64 dev wg1
wg set wg1 private-key <redacted>
ip link set dev wg1 up
wg set wg1 peer xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= preshared-key <redacted> endpoint [2001:db8::2]:51820 allowed-ips 192.0.2.2/32
ip route replace 192.0.2.2/32 dev wg1 table main
"
    );
}

#[test]
fn config_dir_from_the_environment() {
    let (dir, _) = config(&SCENARIO.replace("NAMESPACES", ""));
    let out = wg_exec()
        .env("WG_EXEC_CONFIG_DIR", dir.path())
        .args(["up", "wg1", "--print"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("wireguard-go wg1\n"));
    let out = wg_exec()
        .env("WG_EXEC_CONFIG_DIR", dir.path())
        .args(["up", "wg9", "--print"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr)
        .contains("wg9.ron: cannot read the configuration: No such file or directory"));
}

#[test]
fn check_accepts_a_valid_file_and_reports_key_file_modes() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    std::fs::write(&key, "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let body = format!(
        "Interface(private_key_file: \"{}\", peers: [Peer(public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\", allowed_ips: [\"0.0.0.0/0\"])])",
        key.display()
    );
    let (_d, path) = config(&body);
    let out = run(&["check", "wg1", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("wg1: {} is valid (1 peer)\n", path.display())
    );
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "is readable by others (mode 0644); chmod 600 it (640 for a group that must read it)"
        ),
        "{err}"
    );
    assert!(
        err.contains("peers[0].allowed_ips[0]: 0.0.0.0/0 becomes a route in table main"),
        "{err}"
    );
}

/// (configuration, the whole first error line after the file name)
const BAD: &[(&str, &str)] = &[
    (
        "Interface(private_key: \"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\", mtuu: 1420)",
        ":1:72: mtuu: unknown field `mtuu` in Interface; did you mean `mtu`?",
    ),
    (
        "Interface(private_key_file: \"/k\", peers: [Peer(public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\", allowed_ips: [], colour: 1)])",
        ":1:125: peers[0].colour: unknown field `colour` in Peer; valid fields are name, public_key, preshared_key, preshared_key_file, allowed_ips, endpoint, dynamic_endpoint_refresh_seconds, dynamic_endpoint_refresh_restart_seconds, persistent_keepalive",
    ),
    (
        "Interface(private_key_file: \"/k\", listen_port: 70000)",
        ":1:48: listen_port: 70000 is out of range: a port is 0-65535 (0 = any)",
    ),
    (
        "Interface(private_key_file: \"/k\", ips: [\"2001:db8::1/64\"], mtu: 1000)",
        ":1:65: mtu: 1000 is out of range: with an IPv6 address the MTU must be 1280-65535",
    ),
    (
        "Interface(private_key_file: \"/k\", peers: [Peer(public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\",\n  allowed_ips: [\"192.0.2.1/24\"])])",
        ":2:17: peers[0].allowed_ips[0]: `192.0.2.1/24` has host bits set; did you mean `192.0.2.0/24`?",
    ),
    (
        "Interface(private_key: \"AAAA\")",
        ":1:24: private_key: not a WireGuard key: decodes to 3 bytes, a WireGuard key is exactly 32",
    ),
    (
        "Interface(ips: [])",
        ":1:1: exactly one of private_key and private_key_file must be set",
    ),
    (
        "Interface(private_key: \"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\", private_key_file: \"/k\")",
        ":1:24: private_key: set either private_key or private_key_file, not both",
    ),
    (
        "Interface(private_key: \"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\", generate_private_key_file: true)",
        ":1:99: generate_private_key_file: generate_private_key_file needs private_key_file, and private_key unset",
    ),
    (
        "Interface(private_key_file: \"/k\", peers: [Peer(public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\", allowed_ips: [], preshared_key: \"FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=\", preshared_key_file: \"/p\")])",
        ":1:140: peers[0].preshared_key: set at most one of preshared_key and preshared_key_file",
    ),
    (
        "Interface(private_key_file: \"/k\", fwmark: \"0x1ffffffff\")",
        ":1:43: fwmark: `0x1ffffffff` is not a firewall mark: use decimal or 0x-hex within 32 bits",
    ),
    (
        "Interface(private_key_file: \"/k\", table: \"nosuch\")",
        ":1:42: table: unknown routing table `nosuch`: not a number and not in /etc/iproute2/rt_tables or rt_tables.d/*.conf",
    ),
    (
        "Interface(private_key_file: \"/k\", peers: [Peer(public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\", allowed_ips: [], endpoint: \"2001:db8::1:51820\")])",
        ":1:135: peers[0].endpoint: `2001:db8::1:51820`: an IPv6 endpoint needs brackets, as in [2001:db8::1]:51820",
    ),
    (
        "Interface(private_key_file: \"/k\", peers: [Peer(public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\", allowed_ips: [], endpoint: \"host:0\")])",
        ":1:135: peers[0].endpoint: port `0` in `host:0` is not 1-65535",
    ),
    (
        "Interface(private_key_file: \"/k\", peers: [\n  Peer(public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\", allowed_ips: []),\n  Peer(public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\", allowed_ips: []),\n])",
        ":3:20: peers[1].public_key: the same public key as peers[0]",
    ),
    (
        "Interface(private_key_file: \"/k\", peers: [Peer(public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\", allowed_ips: [], persistent_keepalive: 65536)])",
        ":1:147: peers[0].persistent_keepalive: 65536 is out of range: seconds are 0-65535 (0 = off)",
    ),
    (
        "Interface(private_key_file: \"/k\", mtu: \"big\")",
        ":1:40: mtu: `big` is not an MTU: a number, or \"auto\" (wg-quick's: from the routes to the endpoints)",
    ),
    (
        "Interface(private_key_file: \"/k\", peers: [Peer(allowed_ips: [])])",
        ":1:63: peers[0].public_key: Peer is missing the required field `public_key`",
    ),
    (
        "Interface(private_key_file: \"/k\", ips: [\"192.0.2.1/24\", \"192.0.2.1/32\"])",
        ":1:57: ips[1]: 192.0.2.1 is already ips[0]: an address is added once",
    ),
    (
        "Interface(private_key_file: \"/k\"",
        ":1:33: private_key_file: Expected comma",
    ),
];

#[test]
fn bad_configurations_exit_2_naming_file_position_and_field() {
    for (body, expected) in BAD {
        let (_d, path) = config(body);
        let out = run(&["check", "wg1", "--config", path.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}\n{err}");
        let first = err.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("wg-exec: error: {}{expected}", path.display()),
            "for {body}"
        );
        // Nothing printed on stdout: no plan, no success line.
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_bad_interface_name_is_named_as_coming_from_the_command_line() {
    let (_d, path) = config("Interface(private_key_file: \"/k\")");
    let out = run(&[
        "up",
        "averyveryverylongname",
        "--config",
        path.to_str().unwrap(),
        "--print",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim_end(),
        format!("wg-exec: error: {}: interface name (command line): `averyveryverylongname` is 21 bytes long; an interface name has 1 to 15", path.display())
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let (_d, path) =
        config("Interface(private_key_file: \"/k\", listen_port: -1,\n mtu: 10, metric: -5)");
    let out = run(&["check", "wg1", "--config", path.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 3, "{err}");
    assert!(err.contains(":2:7: mtu: 10 is out of range"), "{err}");
    assert!(err.contains(":2:19: metric: -5 is out of range"), "{err}");
}

#[test]
fn help_documents_the_exit_codes() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for line in [
        "0  success",
        "1  failed, and everything already done was rolled back",
        "2  bad usage, bad configuration or missing capabilities; nothing was touched",
        "3  failed, and the rollback was incomplete",
    ] {
        assert!(help.contains(line), "{help}");
    }
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
}

/// Issue 20, case 2: with a pre_setup hook, key files that do not exist yet are allowed (the
/// hook may make them) and said, as a namespace that does not exist yet is; without the hook
/// they are errors; generate_private_key_file makes a missing private key file no news.
#[test]
fn check_warns_about_key_files_pre_setup_must_create() {
    let dir = tempfile::tempdir().unwrap();
    let (key, psk) = (dir.path().join("wg1.key"), dir.path().join("b.psk"));
    let body = |hooks: &str| {
        format!(
            "Interface(private_key_file: \"{}\",{hooks} peers: [Peer(public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\", allowed_ips: [\"198.18.0.0/24\"],\n  preshared_key_file: \"{}\")])",
            key.display(),
            psk.display()
        )
    };
    let (_d, path) = config(&body(" pre_setup: \"true\","));
    let out = run(&["check", "wg1", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("wg1: {} is valid (1 peer)\n", path.display())
    );
    let shown = path.display();
    let warnings: Vec<String> = text(&out.stderr)
        .lines()
        .filter(|l| l.contains("does not exist"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        warnings,
        [
            format!(
                "wg-exec: warning: {shown}:1:29: private_key_file: key file {} does not exist yet; pre_setup must create it",
                key.display()
            ),
            format!(
                "wg-exec: warning: {shown}:2:23: peers[0].preshared_key_file: key file {} does not exist yet; pre_setup must create it",
                psk.display()
            ),
        ]
    );

    // Without the hook: refused, naming both.
    let (_d, path) = config(&body(""));
    let out = run(&["check", "wg1", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "private_key_file: key file {}: No such file or directory (os error 2)",
            key.display()
        )) && err.contains(&format!(
            "peers[0].preshared_key_file: key file {}: No such file or directory (os error 2)",
            psk.display()
        )),
        "{err}"
    );
    assert!(!err.contains("does not exist yet"), "{err}");

    // Generated by up: no word about the private key file (the preshared key is still said).
    let (_d, path) = config(&body(
        " pre_setup: \"true\", generate_private_key_file: true,",
    ));
    let out = run(&["check", "wg1", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(!err.contains("private_key_file: key file"), "{err}");
    assert!(
        err.contains("peers[0].preshared_key_file: key file"),
        "{err}"
    );
}
