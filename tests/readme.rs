//! The README and the shipped systemd units, exercised as written. The test reads README.md at
//! run time and takes from it the ```ron block under "## Example" (with the command list
//! `--print` is said to show) and the install commands under "## Install"; the units are the
//! files in `systemd/` (`wg-exec@.service`, the drop-in `non-root.conf` applied to it,
//! `wg-exec-refresh@.service`), which docs/systemd.md, the guide to them, must name and whose
//! settings table must be the unit's, so an edited README, guide or unit file is what gets
//! tested. There is no systemd here: the
//! units' [Service] settings that matter to wg-exec are carried out by the emulation under
//! "systemd, emulated" below, for interface units (Type=oneshot, RemainAfterExit=yes: ExecStart
//! run to its end, ExecStop later) and service units (Type=simple: ExecStart is the main
//! process, left running, stopped by SIGTERM); the settings that only harden a unit are
//! accepted and left to the systemd VM test (see HARDENING); anything else is refused.
//!
//! Nothing here touches the machine. Each test runs in ONE private mount namespace of its own
//! (a holder process made by `unshare --mount --propagation private`; commands enter it with
//! `nsenter --mount`), in which:
//! - /run is a fresh tmpfs: /run/netns (so `ip netns add underlay` makes a namespace with exactly
//!   the README's name that nobody else sees) and /run/wireguard are private;
//! - /etc is an overlay on the real /etc (its changes go to a temporary directory), so that
//!   /etc/wg-exec can be a bind-mounted temporary directory although the machine has none, and
//!   /etc/hosts is a bind-mounted file that maps the example's endpoint host name to a test
//!   peer (no DNS query is needed, and the namespaces have no route out of the machine anyway);
//! - /var/lib is an overlay too, and /var/lib/wg-exec (wg-exec's default state directory, the
//!   units' StateDirectory=) a bind-mounted temporary directory, so that the journals and locks
//!   of `wg0`, the name every test here uses, collide neither with each other (the tests run in
//!   parallel) nor with anything on the machine;
//! - /usr/sbin, where the units' ExecStart= program is, is an overlay as well, once a unit is
//!   installed, with the test's binary bound on /usr/sbin/wg-exec;
//! - /dev/net/tun is a 0666 node, as udev makes it (this machine's own is 0600).
//!
//! wg-exec itself always runs inside a network namespace the test made ("host"), standing in
//! for the machine's own, never in the real root namespace. When the test ends, also on failure,
//! every process in the private namespaces is killed and the namespaces are deleted (by the
//! test's Drop, and again by the holder when its stdin closes, which also covers a killed test
//! process).
//!
//! Addresses: 203.0.113.0/24 and 2001:db8:ffff::/64 for the underlay, 192.0.2.0/24 and
//! 2001:db8:1::/64 inside the units' tunnels; the example brings its own (192.0.2.1/24,
//! 2001:db8::1/64), and its endpoint host name resolves to 203.0.113.2.
//!
//! The machinery lives in tests/support/: the Markdown extractor (`markdown`), the units read
//! (`systemd`) and emulated (`emulate`), the private mount namespace (`sandbox`).

mod support;
use std::path::Path;
use std::process::{ExitStatus, Output};
use std::time::{Duration, Instant};
use support::*;

/// The test peer of the units' tunnels.
const PEER: &str = "peer";
/// Where the example's endpoint host name points (203.0.113.2).
const ENDPOINT: &str = "endpoint";

// ------------------------------------------------------------------------------------------
// What the README says.

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The guide to the units, docs/systemd.md (its units and settings are checked against
/// systemd/).
fn systemd_guide() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/systemd.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

// ------------------------------------------------------------------------------------------
// The example's world.

/// The example configuration set up as written: /etc/wg-exec/wg0.ron is the README's block
/// byte for byte, its preshared key file exists (`wg genpsk`, 0600), its private key file does
/// not (so the example's key generation runs), the namespaces it names exist, its socket
/// namespace reaches the endpoint host (203.0.113.2, a namespace of its own, through /etc/hosts).
struct ExampleWorld {
    sb: Sandbox,
    socket_ns: String,
    interface_ns: String,
    key_file: String,
    psk: String,
    peer_key: String,
}

impl ExampleWorld {
    fn new(ex: &Example) -> ExampleWorld {
        let socket_ns = ron_string(&ex.config, "socket_namespace");
        let interface_ns = ron_string(&ex.config, "interface_namespace");
        let key_file = ron_string(&ex.config, "private_key_file");
        let psk_file = ron_string(&ex.config, "preshared_key_file");
        let peer_key = ron_string(&ex.config, "public_key");
        let endpoint = ron_string(&ex.config, "endpoint");
        let (host, _port) = endpoint.rsplit_once(':').expect("endpoint host:port");
        for ns in [&socket_ns, &interface_ns] {
            assert!(
                ![HOST, ENDPOINT, "init"].contains(&ns.as_str()),
                "the example's namespace {ns} clashes with the test's own"
            );
        }
        let sb = Sandbox::new(&format!(
            "127.0.0.1 localhost\n::1 localhost\n203.0.113.2 {host}\n"
        ));
        std::fs::write(sb.path("etc-wg-exec").join("wg0.ron"), &ex.config).unwrap();
        let psk_path = sb.etc_wg_exec(&psk_file);
        std::fs::create_dir_all(psk_path.parent().unwrap()).unwrap();
        must(&format!("umask 077; wg genpsk > {}", psk_path.display()));
        let psk = std::fs::read_to_string(&psk_path)
            .unwrap()
            .trim()
            .to_string();
        assert!(
            !sb.etc_wg_exec(&key_file).exists(),
            "the private key file must not exist before up"
        );
        let mut spaces = vec![HOST, ENDPOINT, socket_ns.as_str()];
        if interface_ns != socket_ns {
            spaces.push(interface_ns.as_str());
        }
        for ns in &spaces {
            sb.netns(ns);
        }
        sb.veth(&socket_ns, ENDPOINT);
        // The name resolves inside to the endpoint namespace's address, from /etc/hosts.
        assert_eq!(
            sb.must(&format!("getent ahostsv4 {host} | head -n1"))
                .split_whitespace()
                .next(),
            Some("203.0.113.2")
        );
        ExampleWorld {
            sb,
            socket_ns,
            interface_ns,
            key_file,
            psk,
            peer_key,
        }
    }

    /// The namespaces whose state must be as before after down: the one wg-exec runs in and
    /// the two the example names.
    fn spaces(&self) -> Vec<&str> {
        let mut v = vec![HOST, self.socket_ns.as_str()];
        if self.interface_ns != self.socket_ns {
            v.push(self.interface_ns.as_str());
        }
        v
    }

    /// What the example's up must have done, seen by `ip -j` and `wg show dump`. `uid`: who
    /// ran it (the key file's owner, wireguard-go's user).
    fn check_up(&self, uid: u32) {
        let (sb, sock, tun) = (&self.sb, &self.socket_ns, &self.interface_ns);
        assert!(!sb.has_link(HOST, INSTANCE), "wg0 never in {HOST}");
        if sock != tun {
            assert!(!sb.has_link(sock, INSTANCE), "wg0 was moved out of {sock}");
        }
        let link = sb.must(&format!("ip -n {tun} -j -d link show dev {INSTANCE}"));
        assert!(link.contains("\"mtu\":1420"), "mtu 1420: {link}");
        assert!(
            link.contains("\"info_kind\":\"tun\""),
            "wireguard-go: {link}"
        );
        let addrs = sb.must(&format!("ip -n {tun} -j address show dev {INSTANCE}"));
        for a in [
            "\"local\":\"192.0.2.1\",\"prefixlen\":24",
            "\"local\":\"2001:db8::1\",\"prefixlen\":64",
        ] {
            assert!(addrs.contains(a), "address {a}: {addrs}");
        }
        for (family, dst) in [("-4", "192.0.2.0/24"), ("-6", "2001:db8:1::/48")] {
            let routes =
                json_objects(&sb.must(&format!("ip -n {tun} -j {family} route show table main")));
            assert!(
                routes
                    .iter()
                    .any(|r| r.contains(&format!("\"dst\":\"{dst}\""))
                        && r.contains("\"dev\":\"wg0\"")
                        && r.contains("\"metric\":50")),
                "route {dst} dev wg0 metric 50 in table main: {routes:?}"
            );
        }

        // The generated key file: 0600, owned by who ran up, the device's key.
        let stat = sb.must(&format!("stat -c '%a %u' {}", self.key_file));
        assert_eq!(stat.trim(), format!("600 {uid}"), "generated key file");
        let private = sb
            .must(&format!("cat {}", self.key_file))
            .trim()
            .to_string();
        let public = sb
            .must(&format!("wg pubkey < {}", self.key_file))
            .trim()
            .to_string();

        let dump = sb.wg_dump(tun, INSTANCE);
        assert_eq!(dump.len(), 2, "one peer: {dump:?}");
        assert_eq!(dump[0][0], private, "private key from the generated file");
        assert_eq!(dump[0][1], public);
        assert_eq!(dump[0][2], "51820", "listen port");
        assert_eq!(dump[0][3], "0x6e6978", "fwmark");
        assert_eq!(dump[1][0], self.peer_key, "peer");
        assert_eq!(dump[1][1], self.psk, "preshared key from the file");
        assert_eq!(dump[1][2], "203.0.113.2:12913", "endpoint via /etc/hosts");
        assert_eq!(dump[1][3], "192.0.2.0/24,2001:db8:1::/48", "allowed ips");
        assert_eq!(dump[1][7], "25", "persistent keepalive");
        // No handshake and no ping: nobody has the private key of the example's peer public
        // key, so the device can only send handshake initiations to 203.0.113.2.

        // wireguard-go serves it from the socket namespace, where the UDP socket is.
        let procs = sb.processes(sock);
        assert!(
            procs
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == [uid.to_string().as_str(), "wireguard-go", INSTANCE]),
            "wireguard-go {INSTANCE} as uid {uid} in {sock}: {procs}"
        );
        assert!(
            sb.entries("/run/wireguard").contains("wg0.sock"),
            "UAPI socket"
        );
    }

    /// Nothing of the example left: no link, no process, no socket, no journal, namespaces as
    /// before up.
    fn check_no_trace(&self, before: &[(String, String)], state_dir: &str) {
        let sb = &self.sb;
        for ns in self.spaces() {
            assert!(!sb.has_link(ns, INSTANCE), "wg0 left in {ns}");
            let procs = sb.processes(ns);
            assert!(procs.trim().is_empty(), "processes left in {ns}: {procs}");
        }
        assert_eq!(sb.entries("/run/wireguard"), "", "UAPI socket left");
        assert_eq!(sb.entries(state_dir), "", "journal or lock left");
        assert_same(sb, before, "after down");
    }
}

// ------------------------------------------------------------------------------------------
// The tests.

/// The README, docs/systemd.md and the files in systemd/ agree (no root needed): the example
/// and its `--print` list are in the README, docs/systemd.md names every unit and drop-in the
/// tests run and its settings table is the interface unit's, the units run the program where
/// the README's "## Install" puts it and keep wg-exec's state in their StateDirectory=.
#[test]
fn readme_has_the_example_its_print_output_and_names_the_shipped_units() {
    let readme = readme();
    let ex = example(&readme);
    let md = systemd_guide();
    assert!(ex.config.contains("Interface("), "{}", ex.config);
    assert!(ex.print.len() >= 5, "{:?}", ex.print);

    // The README names each file the test runs, and systemd/ holds no unit or drop-in that the
    // test does not run.
    let shipped = [
        INTERFACE_UNIT,
        NON_ROOT_DROPIN,
        REFRESH_UNIT,
        NON_ROOT_REFRESH_DROPIN,
    ];
    for f in shipped {
        assert!(
            md.contains(&format!("systemd/{f}")),
            "docs/systemd.md does not name systemd/{f}"
        );
    }
    assert!(
        md.contains(&format!("{INTERFACE_UNIT}.d/")),
        "docs/systemd.md does not say that {NON_ROOT_DROPIN} is a drop-in of {INTERFACE_UNIT}"
    );
    assert!(
        md.contains(&format!("{REFRESH_UNIT}.d/")),
        "docs/systemd.md does not say that {NON_ROOT_REFRESH_DROPIN} is a drop-in of {REFRESH_UNIT}"
    );
    let mut files: Vec<String> = std::fs::read_dir(SYSTEMD_DIR)
        .unwrap_or_else(|e| panic!("{SYSTEMD_DIR}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".service") || f.ends_with(".conf"))
        .collect();
    files.sort();
    let mut expected: Vec<String> = shipped.iter().map(|f| f.to_string()).collect();
    expected.sort();
    assert_eq!(
        files, expected,
        "the units and drop-ins in systemd/ against those tests/readme.rs runs"
    );

    let root = root_unit();
    let non_root = non_root_unit(&[]);
    let refresh = refresh_unit();
    assert_eq!(
        non_root.user.as_deref(),
        Some("wg-exec"),
        "{}",
        non_root.title
    );
    assert_eq!(
        refresh.binds_to,
        [root.instance_name()],
        "{}",
        refresh.title
    );

    // What docs/systemd.md's table under "## systemd" says of the interface unit's settings is
    // what the file says.
    let systemd = section(&md, "systemd");
    let (_, unit_text) = systemd_file(INTERFACE_UNIT);
    let lines: Vec<&str> = unit_text.lines().map(str::trim).collect();
    let mut claimed = 0;
    for row in systemd.lines().filter(|l| l.starts_with("| `")) {
        for (i, span) in row.split('`').enumerate() {
            if i % 2 == 1 && span.contains('=') && !span.ends_with('=') {
                assert!(
                    lines.contains(&span),
                    "docs/systemd.md's \"## systemd\" table says `{span}`, \
                     systemd/{INTERFACE_UNIT} has no such line"
                );
                claimed += 1;
            }
        }
    }
    assert!(
        claimed >= 10,
        "docs/systemd.md: the settings table under \"## systemd\""
    );

    // Every unit runs the program where "## Install" puts it, and keeps its state where
    // its StateDirectory= is (which no stop, failure or kill removes); the interface and the
    // refresh unit share it.
    let install = section(&readme, "Install");
    for unit in [&root, &non_root, &refresh] {
        for line in unit.start.iter().chain(&unit.reload).chain(&unit.stop) {
            let program = &exec_argv(line)[0];
            assert!(
                install.contains(&format!(" {program}\n")),
                "{}: README.md's \"## Install\" does not install {program}",
                unit.title
            );
        }
        let state = unit.state_dir();
        assert!(
            unit.state_dirs
                .iter()
                .any(|d| state == format!("/var/lib/{d}")),
            "{}: wg-exec keeps its state in {state}, not in a StateDirectory= ({:?})",
            unit.title,
            unit.state_dirs
        );
        assert_eq!(
            state,
            root.state_dir(),
            "{}: the state directory",
            unit.title
        );
    }
}

/// The emulation itself (no root needed): what it takes from a unit and its drop-ins, and that
/// it refuses what it would not carry out as systemd does, loudly, instead of running it some
/// other way.
#[test]
fn readme_unit_emulation_refuses_what_it_does_not_know() {
    use std::os::unix::process::ExitStatusExt;
    let unit = |service: &str| {
        format!(
            "# x@.service\n[Unit]\nDescription=x\nBindsTo=wg-exec@%i.service\n\
             [Service]\n{service}\n[Install]\nWantedBy=wg-exec@%i.service\n"
        )
    };
    let parse = |texts: &[&str]| {
        let files: Vec<(String, String)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("file {i}"), t.to_string()))
            .collect();
        parse_unit("x@.service", &files)
    };
    let start = "ExecStart=/usr/sbin/wg-exec refresh %i";
    let simple = parse(&[&unit(&format!(
        "Type=simple\n{start}\nRestart=on-failure\nRestartSec=1min 30s"
    ))]);
    assert_eq!(simple.kind, Kind::Service);
    assert!(!simple.interface());
    assert_eq!(simple.binds_to, ["wg-exec@wg0.service"]);
    assert_eq!(simple.instance_name(), "x@wg0.service");
    assert_eq!(simple.restart_sec, Duration::from_secs(90));
    assert_eq!(simple.umask, 0o022, "systemd's default UMask=");
    assert_eq!(
        simple.state_mode, 0o755,
        "systemd's default StateDirectoryMode="
    );
    assert_eq!(simple.state_dir(), "/var/lib/wg-exec", "wg-exec's default");
    // on-failure: a non-zero exit or an unclean signal, not exit 0 or SIGTERM.
    for (raw, restarts) in [(0, false), (1 << 8, true), (15, false), (9, true)] {
        assert_eq!(
            simple.restarts_after(ExitStatus::from_raw(raw)),
            restarts,
            "{:?}",
            ExitStatus::from_raw(raw)
        );
    }
    let stop = "ExecStop=/usr/sbin/wg-exec down %i";
    let base = unit(&format!(
        "Type=oneshot\nRemainAfterExit=yes\nExecStart=/usr/sbin/wg-exec up %i\n{stop}\n\
         User=a\nGroup=a\nAmbientCapabilities=CAP_NET_ADMIN\n\
         CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYS_ADMIN\nEnvironment=A=1 B=%i\n\
         StateDirectory=wg-exec\nStateDirectoryMode=0700\nRuntimeDirectory=wireguard\nUMask=0077\n\
         NoNewPrivileges=yes\nSystemCallFilter=@system-service @mount setns"
    ));
    let oneshot = parse(&[&base]);
    assert!(oneshot.interface());
    assert_eq!(oneshot.restart, "no");
    assert_eq!((oneshot.uid(), oneshot.gid()), (UNIT_UID, UNIT_UID));
    assert_eq!(oneshot.umask, 0o077);
    assert_eq!(oneshot.state_mode, 0o700);
    assert_eq!(oneshot.state_dirs, ["wg-exec"]);
    assert_eq!(oneshot.runtime_dirs, ["wireguard"]);
    assert_eq!(
        oneshot.env,
        [("A".into(), "1".into()), ("B".into(), "wg0".into())]
    );
    // A drop-in: User= and Group= replace, capability lines and Environment= add.
    let dropin = "[Service]\nUser=wg-exec\nGroup=root\nAmbientCapabilities=CAP_SYS_MODULE \
                  CAP_NET_ADMIN\nCapabilityBoundingSet=CAP_SYS_MODULE\nEnvironment=A=2";
    let both = parse(&[&base, dropin]);
    assert_eq!(both.title, "file 0 + file 1");
    assert_eq!(both.user.as_deref(), Some("wg-exec"));
    assert_eq!((both.uid(), both.gid()), (UNIT_UID, 0));
    assert_eq!(both.ambient, ["CAP_NET_ADMIN", "CAP_SYS_MODULE"]);
    assert_eq!(
        both.bounding.as_deref(),
        Some(&["CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_MODULE"].map(String::from)[..])
    );
    assert_eq!(
        both.env,
        [("B".into(), "wg0".into()), ("A".into(), "2".into())]
    );
    // Empty assignments reset; an unset User= is root again.
    let reset = parse(&[
        &base,
        dropin,
        "[Service]\nUser=\nGroup=\nAmbientCapabilities=\nCapabilityBoundingSet=\nExecStart=\n\
         ExecStart=/usr/sbin/wg-exec up --wait 5 %i",
    ]);
    assert!(reset.root());
    assert_eq!((reset.uid(), reset.gid()), (0, 0));
    assert!(reset.ambient.is_empty());
    assert_eq!(reset.bounding.as_deref(), Some(&[][..]));
    assert_eq!(reset.start, ["/usr/sbin/wg-exec up --wait 5 %i"]);
    for (service, says) in [
        (format!("Type=simple\n{start}\n{stop}"), "SIGTERM"),
        (
            format!("Type=simple\n{start}\n{start}"),
            "exactly one ExecStart",
        ),
        (
            format!("Type=oneshot\n{start}\n{stop}"),
            "RemainAfterExit=yes",
        ),
        (
            format!("Type=oneshot\nRemainAfterExit=yes\n{start}"),
            "ExecStop=",
        ),
        (format!("Type=forking\n{start}"), "Type=forking"),
        (format!("{start}\n{stop}"), "no Type="),
        (
            format!("Type=simple\n{start}\nKillMode=process"),
            "[Service] KillMode",
        ),
        (
            format!("Type=simple\n{start}\nRestart=sometimes"),
            "sometimes",
        ),
        (format!("Type=simple\n{start}\nRestartSec=5h"), "\"h\""),
        (
            format!("Type=simple\n{start}\nCapabilityBoundingSet=~CAP_SYS_ADMIN"),
            "no ~ inversion",
        ),
        (
            format!("Type=simple\n{start}\nStateDirectory=/var/lib/x"),
            "plain relative names",
        ),
        (format!("Type=simple\n{start}\nUMask=u=rwx"), "octal"),
    ] {
        refused(&[&unit(&service)], says, &parse);
    }
    // Outside [Service] too, and in a drop-in.
    let simple_text = unit(&format!("Type=simple\n{start}"));
    refused(
        &[&simple_text.replace("Description=x", "ConditionPathExists=/x")],
        "[Unit] ConditionPathExists",
        &parse,
    );
    refused(
        &[&format!("{simple_text}[Socket]\nListenStream=1\n")],
        "[Socket]",
        &parse,
    );
    refused(
        &[&simple_text, "[Service]\nDynamicUser=yes"],
        "[Service] DynamicUser",
        &parse,
    );
    refused(
        &[&simple_text, "[Install]\nUpheldBy=x.service"],
        "[Install] UpheldBy",
        &parse,
    );
}

/// `parse(texts)` panics with a message that contains `says`.
fn refused(texts: &[&str], says: &str, parse: &dyn Fn(&[&str]) -> Unit) {
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(texts)))
        .expect_err(&format!("accepted: {texts:?}"));
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.contains(says), "{texts:?}: {msg}");
}

/// `wg-exec up wg0 --print` with /etc/wg-exec/wg0.ron = the README's block prints exactly the
/// command list the README shows after it.
#[test]
fn readme_example_print_is_the_command_list_the_readme_shows() {
    if !real_environment("readme_example_print_is_the_command_list_the_readme_shows") {
        return;
    }
    let ex = example(&readme());
    let sb = Sandbox::new("127.0.0.1 localhost\n");
    std::fs::write(sb.path("etc-wg-exec").join("wg0.ron"), &ex.config).unwrap();
    let files = sb.config_files();
    // --print touches no kernel state; an anonymous network namespace all the same.
    let out = sb.sh(&format!(
        "unshare --net env -i PATH={SYSTEMD_PATH} {} up {INSTANCE} --print </dev/null",
        wg_exec_bin()
    ));
    assert!(
        out.status.success(),
        "--print failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    let printed: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(printed, ex.print, "--print against the README's list");
    assert_eq!(sb.config_files(), files, "--print wrote nothing");
}

/// The example configuration as written, as root: `wg-exec up wg0` (no --config) in the
/// namespace standing in for the machine's own, then `wg-exec down wg0`.
#[test]
fn readme_example_configuration_comes_up_and_goes_down_as_written() {
    if !real_environment("readme_example_configuration_comes_up_and_goes_down_as_written") {
        return;
    }
    let w = ExampleWorld::new(&example(&readme()));
    let sb = &w.sb;
    let spaces = w.spaces();
    let before = sb.snapshots(&spaces);

    let up = sb.wg_exec_as_root(&format!("up {INSTANCE}"));
    let log = text(&up.stderr);
    assert!(up.status.success(), "up failed ({}): {log}", up.status);
    assert!(log.contains("starting wg0"), "pre_setup hook ran: {log}");
    w.check_up(0);
    // The journal, in the default state directory (the sandbox's private one), with this
    // boot's id.
    let journal = std::fs::read_to_string(sb.state_path("wg-exec").join("wg0.ron"))
        .unwrap_or_else(|e| panic!("the journal while up, in {STATE_DIR}: {e}"));
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert!(
        journal.contains(boot.trim()),
        "the journal carries the boot id {boot}: {journal}"
    );
    // The namespace wg-exec ran in is not touched by a configuration that names two others.
    assert_same(sb, &before[..1], "while up");

    let down = sb.wg_exec_as_root(&format!("down {INSTANCE}"));
    let log = text(&down.stderr);
    assert!(
        down.status.success(),
        "down failed ({}): {log}",
        down.status
    );
    assert!(log.contains("stopped wg0"), "post_shutdown hook ran: {log}");
    w.check_no_trace(&before, STATE_DIR);
}

/// The plain configuration (no namespace options, the shape most users write) in a sandbox:
/// wg-exec runs in namespace HOST, the test peer is up in namespace PEER, a veth joins them
/// (203.0.113.1 and .2), /etc/wg-exec/wg0.ron has its key and preshared key files.
struct PlainWorld {
    sb: Sandbox,
    /// wg0's public key.
    public: String,
    psk: String,
    /// The peer's public key.
    peer: String,
}

impl PlainWorld {
    /// `units` are installed; the first is the interface unit, for whose user /etc/wg-exec is
    /// laid out (`Sandbox::etc_for`). `hosts` is the sandbox's /etc/hosts; `endpoint` is the peer's endpoint as
    /// written in wg0.ron, `peer_fields` more fields of that peer.
    fn new(units: &[&Unit], hosts: &str, endpoint: &str, peer_fields: &str) -> PlainWorld {
        let sb = Sandbox::new(hosts);
        for unit in units {
            sb.install_unit(unit);
        }
        sb.netns(HOST);
        sb.netns(PEER);
        sb.veth(HOST, PEER);

        // The unit's configuration and keys in /etc/wg-exec, the peer's elsewhere.
        let etc = sb.path("etc-wg-exec");
        std::fs::create_dir(etc.join("keys")).unwrap();
        let key = |path: &Path| -> String {
            must(&format!("umask 077; wg genkey > {}", path.display()));
            must(&format!("wg pubkey < {}", path.display()))
                .trim()
                .to_string()
        };
        let public = key(&etc.join("keys/wg0.key"));
        must(&format!(
            "umask 077; wg genpsk > {}",
            etc.join("keys/wg0.psk").display()
        ));
        let psk = std::fs::read_to_string(etc.join("keys/wg0.psk"))
            .unwrap()
            .trim()
            .to_string();
        let peer = peer_public(&sb, &public);
        std::fs::write(
            etc.join("wg0.ron"),
            format!(
                "Interface(
    ips: [\"192.0.2.1/24\", \"2001:db8:1::1/64\"],
    private_key_file: \"/etc/wg-exec/keys/wg0.key\",
    listen_port: 51820,
    peers: [
        Peer(
            public_key: \"{peer}\",
            preshared_key_file: \"/etc/wg-exec/keys/wg0.psk\",
            allowed_ips: [\"192.0.2.2/32\", \"2001:db8:1::2/128\"],
            endpoint: \"{endpoint}\",
            persistent_keepalive: 25,{peer_fields}
        ),
    ],
)
"
            ),
        )
        .unwrap();
        sb.etc_for(units[0]);
        PlainWorld {
            sb,
            public,
            psk,
            peer,
        }
    }

    /// `wg show wg0 endpoints` in HOST: the peer's endpoint.
    fn endpoint(&self) -> String {
        let out = self.sb.must(&format!(
            "ip netns exec {HOST} wg show {INSTANCE} endpoints"
        ));
        let (key, endpoint) = out
            .trim()
            .split_once('\t')
            .unwrap_or_else(|| panic!("wg show {INSTANCE} endpoints: {out:?}"));
        assert_eq!(key, self.peer, "wg show {INSTANCE} endpoints: the peer");
        endpoint.to_string()
    }

    /// After the interface unit's ExecStop: no link, no process in HOST, no UAPI socket, no
    /// journal or lock, HOST as `before`; then systemd's part of the stop.
    fn check_no_trace(&self, unit: &Unit, before: &[(String, String)], what: &str) {
        let sb = &self.sb;
        sb.unit_stopped(unit);
        assert!(!sb.has_link(HOST, INSTANCE), "{what}: wg0 left");
        let procs = sb.processes(HOST);
        assert!(procs.trim().is_empty(), "{what}: processes left: {procs}");
        assert!(
            !sb.entries("/run/wireguard").contains("wg0.sock"),
            "{what}: UAPI socket left"
        );
        let state_dir = unit.state_dir();
        assert_eq!(sb.entries(&state_dir), "", "{what}: journal or lock left");
        assert_same(sb, before, what);
    }

    fn peer_down(&self) {
        let out = peer_sh(
            &self.sb,
            &format!(
                "{} down wgp --config {}",
                wg_exec_bin(),
                self.sb.path("peer/peer.ron").display()
            ),
        );
        assert!(out.status.success(), "peer down: {}", text(&out.stderr));
    }
}

/// A plain configuration through one interface unit: ExecStart in the namespace standing in
/// for the machine's own, a tunnel to a peer in a second namespace, pings both ways over IPv4
/// and IPv6, ExecReload after an edit, ExecStop, no trace.
fn plain_configuration_through(unit: &Unit) {
    let what = &unit.title;
    let w = PlainWorld::new(
        &[unit],
        "127.0.0.1 localhost\n::1 localhost\n",
        "203.0.113.2:51821",
        "",
    );
    let (sb, public, psk, peer) = (&w.sb, &w.public, &w.psk, &w.peer);
    let etc = sb.path("etc-wg-exec");
    let before = sb.snapshots(&[HOST]);
    let state_dir = unit.state_dir();

    w.sb.start_unit(unit, &[]);
    let link = sb.must(&format!("ip -n {HOST} -j -d link show dev {INSTANCE}"));
    assert!(link.contains("\"info_kind\":\"tun\""), "{what}: {link}");
    let procs = sb.processes(HOST);
    assert!(
        procs
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [unit.uid().to_string().as_str(), "wireguard-go", INSTANCE]),
        "{what}: wireguard-go {INSTANCE} as uid {}: {procs}",
        unit.uid()
    );
    assert!(
        sb.entries(&state_dir).contains("wg0.ron"),
        "{what}: the journal in {state_dir} while up"
    );
    // systemd's part, as emulated: the state directory is the unit user's, the unit's UMask=
    // reaches what wg-exec starts.
    assert_eq!(
        sb.must(&format!("stat -c %u:%g {state_dir}")).trim(),
        format!("{}:{}", unit.uid(), unit.gid()),
        "{what}: the owner of {state_dir}"
    );
    let umask = sb.must(&format!(
        "ip netns pids {HOST} | while read p; do \
           [ \"$(cat /proc/$p/comm)\" = wireguard-go ] && grep '^Umask:' /proc/$p/status; \
         done"
    ));
    assert_eq!(
        umask.split_whitespace().collect::<Vec<_>>(),
        ["Umask:", &format!("{:04o}", unit.umask)],
        "{what}: wireguard-go's umask"
    );
    for (ns, addr) in [
        (HOST, "192.0.2.2"),
        (HOST, "2001:db8:1::2"),
        (PEER, "192.0.2.1"),
        (PEER, "2001:db8:1::1"),
    ] {
        assert!(sb.ping(ns, addr), "{what}: ping {addr} from {ns}");
    }
    let dump = sb.wg_dump(HOST, INSTANCE);
    assert_eq!(dump.len(), 2, "{what}: {dump:?}");
    assert_eq!(&dump[0][1], public, "{what}: public key");
    assert_eq!(dump[0][2], "51820", "{what}: listen port");
    assert_eq!(&dump[1][1], psk, "{what}: psk");
    assert_eq!(dump[1][2], "203.0.113.2:51821", "{what}: endpoint");
    assert_eq!(
        dump[1][3], "192.0.2.2/32,2001:db8:1::2/128",
        "{what}: allowed ips"
    );
    assert_ne!(dump[1][4], "0", "{what}: a handshake");
    assert_eq!(dump[1][7], "25", "{what}: keepalive");
    assert_eq!(&dump[1][0], peer, "{what}: the peer");
    let peer_dump = peer_sh(sb, "wg show wgp public-key");
    assert_eq!(
        text(&peer_dump.stdout).trim(),
        peer,
        "{what}: the peer's own key"
    );

    // ExecReload after an edit (systemctl reload): the keepalive changes in place, the
    // session stays (the handshake time is the one from before).
    if !unit.reload.is_empty() {
        let cfg = etc.join("wg0.ron");
        let edited = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("persistent_keepalive: 25", "persistent_keepalive: 15");
        std::fs::write(&cfg, edited).unwrap();
        let handshake = dump[1][4].clone();
        w.sb.exec_lines(unit, "ExecReload", &[], &unit.reload);
        let after = sb.wg_dump(HOST, INSTANCE);
        assert_eq!(after[1][7], "15", "{what}: keepalive after reload");
        assert_eq!(after[1][4], handshake, "{what}: the session was kept");
        assert!(sb.ping(HOST, "192.0.2.2"), "{what}: ping after reload");
    }

    w.sb.exec_lines(unit, "ExecStop", &[], &unit.stop);
    w.check_no_trace(unit, &before, what);
    w.peer_down();
}

/// A command for the test peer: in namespace PEER, with a /run (its UAPI socket) and a
/// /var/lib/wg-exec (its journal and lock) of its own, so that it shares nothing with the unit,
/// whose /run/wireguard and state directory may belong to the unit's user (wg-exec as root
/// keeps only the capabilities it needs, not CAP_DAC_OVERRIDE, so its wireguard-go could not
/// write there), and whose state directory must hold nothing of the unit's after its stop.
fn peer_sh(sb: &Sandbox, cmd: &str) -> Output {
    let inner = format!(
        "mount --bind {} /run && mount --bind {} {STATE_DIR} && \
         exec env -i PATH={SYSTEMD_PATH} {cmd} </dev/null",
        sb.path("peer/run").display(),
        sb.path("peer/state").display()
    );
    sb.sh(&format!(
        "ip netns exec {PEER} unshare --mount --propagation private /bin/sh -c {}",
        q(&inner)
    ))
}

/// The test peer: wireguard-go in namespace PEER brought up with wg-exec as root (its
/// configuration outside /etc/wg-exec, its /run and state directory its own), first, so that it answers
/// the unit's first handshake. Returns its public key.
fn peer_public(sb: &Sandbox, unit_public: &str) -> String {
    let dir = sb.path("peer");
    std::fs::create_dir(&dir).unwrap();
    let key = dir.join("peer.key");
    must(&format!("umask 077; wg genkey > {}", key.display()));
    let public = must(&format!("wg pubkey < {}", key.display()))
        .trim()
        .to_string();
    let psk = sb.path("etc-wg-exec/keys/wg0.psk");
    std::fs::write(
        dir.join("peer.ron"),
        format!(
            "Interface(ips: [\"192.0.2.2/24\", \"2001:db8:1::2/64\"], private_key_file: \"{}\",
               listen_port: 51821, backend: Userspace,
               peers: [Peer(public_key: \"{unit_public}\", preshared_key_file: \"{}\",
                            allowed_ips: [\"192.0.2.1/32\", \"2001:db8:1::1/128\"],
                            endpoint: \"203.0.113.1:51820\")])",
            key.display(),
            psk.display()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.join("run")).unwrap();
    std::fs::create_dir(dir.join("state")).unwrap();
    let out = peer_sh(
        sb,
        &format!(
            "{} up wgp --config {}",
            wg_exec_bin(),
            dir.join("peer.ron").display()
        ),
    );
    assert!(out.status.success(), "peer up: {}", text(&out.stderr));
    public
}

#[test]
fn readme_root_unit_runs_a_plain_configuration() {
    if !real_environment("readme_root_unit_runs_a_plain_configuration") {
        return;
    }
    plain_configuration_through(&root_unit());
}

/// The non-root unit (the shipped unit with the non-root drop-in) with exactly the
/// capabilities it lists.
#[test]
fn readme_non_root_unit_runs_a_plain_configuration() {
    if !real_environment("readme_non_root_unit_runs_a_plain_configuration") {
        return;
    }
    plain_configuration_through(&non_root_unit(&[]));
}

/// The drop-in a user adds to the non-root unit for a configuration that names namespaces,
/// as the README says ("add CAP_SYS_ADMIN"; the unit's bounding set already has it).
const SYS_ADMIN_DROPIN: (&str, &str) = (
    "the test's drop-in adding CAP_SYS_ADMIN",
    "[Service]\nAmbientCapabilities=CAP_SYS_ADMIN\n",
);

/// The non-root unit, with the drop-in adding CAP_SYS_ADMIN or not.
fn non_root_unit_for_namespaces(add_sys_admin: bool) -> Unit {
    let plain = non_root_unit(&[]);
    assert!(
        !plain.ambient.iter().any(|c| c == "CAP_SYS_ADMIN"),
        "{}: already has CAP_SYS_ADMIN",
        plain.title
    );
    if !add_sys_admin {
        return plain;
    }
    let unit = non_root_unit(&[SYS_ADMIN_DROPIN]);
    assert!(
        unit.ambient.iter().any(|c| c == "CAP_SYS_ADMIN")
            && unit.ambient.len() == plain.ambient.len() + 1,
        "{}: AmbientCapabilities= accumulate: {:?}",
        unit.title,
        unit.ambient
    );
    unit
}

/// The test's addition to a unit's environment: a failed lookup fails at once instead of being
/// retried.
const NO_RETRIES: &[(&str, &str)] = &[("WG_ENDPOINT_RESOLUTION_RETRIES", "0")];

/// The README's example set up as written, `unit` installed and /etc/wg-exec made for it; the
/// namespaces as they were before.
fn example_through(unit: &Unit) -> (ExampleWorld, Vec<(String, String)>) {
    let w = ExampleWorld::new(&example(&readme()));
    w.sb.install_unit(unit);
    w.sb.etc_for(unit);
    let before = w.sb.snapshots(&w.spaces());
    (w, before)
}

/// The README: a configuration that names namespaces needs CAP_SYS_ADMIN added to the
/// non-root unit. The example configuration through that unit, with it added.
#[test]
fn readme_non_root_unit_with_cap_sys_admin_runs_the_example() {
    if !real_environment("readme_non_root_unit_with_cap_sys_admin_runs_the_example") {
        return;
    }
    let unit = non_root_unit_for_namespaces(true);
    let what = &unit.title;
    let (w, before) = example_through(&unit);
    let sb = &w.sb;
    let env = NO_RETRIES;
    sb.start_unit(&unit, env);
    w.check_up(UNIT_UID);
    assert!(
        sb.entries(&unit.state_dir()).contains("wg0.ron"),
        "{what}: the journal in {} while up",
        unit.state_dir()
    );
    sb.exec_lines(&unit, "ExecStop", env, &unit.stop);
    sb.unit_stopped(&unit);
    w.check_no_trace(&before, &unit.state_dir());
}

/// The same without CAP_SYS_ADMIN: exit 2 naming it, nothing changed.
#[test]
fn readme_non_root_unit_without_cap_sys_admin_refuses_the_example() {
    if !real_environment("readme_non_root_unit_without_cap_sys_admin_refuses_the_example") {
        return;
    }
    let unit = non_root_unit_for_namespaces(false);
    let what = &unit.title;
    let (w, before) = example_through(&unit);
    let sb = &w.sb;
    let files = sb.config_files();
    let env = NO_RETRIES;
    sb.unit_starting(&unit);
    let out = sb.exec_unit(&unit, HOST, &unit.start[0], env);
    let log = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: ExecStart: {log}");
    assert!(log.contains("CAP_SYS_ADMIN"), "{what}: names it: {log}");
    assert_eq!(sb.config_files(), files, "{what}: /etc/wg-exec changed");
    sb.unit_stopped(&unit);
    w.check_no_trace(&before, &unit.state_dir());
}

/// The host name of the refresh test's peer endpoint, in the sandbox's /etc/hosts.
const PEER_NAME: &str = "peer.wg-exec.test";

/// The refresh test's /etc/hosts: PEER_NAME is `addr`. The same length for 203.0.113.2 and
/// 203.0.113.3, so that rewriting it in place never shows a reader a short file.
fn hosts_with_peer_at(addr: &str) -> String {
    format!("127.0.0.1 localhost\n::1 localhost\n{addr} {PEER_NAME}\n")
}

/// The refresh unit (Type=simple, `wg-exec refresh %i`) beside the root interface unit, with the plain configuration whose peer's endpoint is a host name re-resolved every
/// second: it follows a change of /etc/hosts (the new address pushed, one log line), it ends
/// by itself with exit 0 when the interface unit's ExecStop takes the interface down (what
/// BindsTo= would also do, by SIGTERM), and SIGTERM (systemd's stop) ends it with exit 0
/// within a second. No trace either time.
#[test]
fn readme_refresh_unit_follows_dns_and_ends_with_its_interface() {
    if !real_environment("readme_refresh_unit_follows_dns_and_ends_with_its_interface") {
        return;
    }
    refresh_through(&root_unit(), &refresh_unit());
}

#[test]
fn readme_non_root_refresh_unit_shares_the_state_with_the_non_root_interface_unit() {
    if !real_environment("readme_non_root_refresh_unit_shares_the_state") {
        return;
    }
    let refresh = refresh_unit_with(&[NON_ROOT_REFRESH_DROPIN]);
    let interface = non_root_unit(&[]);
    assert_eq!(refresh.user, interface.user, "the same user for both units");
    assert!(!refresh.root());
    refresh_through(&interface, &refresh);
}

fn refresh_through(interface: &Unit, unit: &Unit) {
    let what = &unit.title;
    assert!(
        unit.binds_to.contains(&interface.instance_name()),
        "{what}: BindsTo={:?} does not name {}",
        unit.binds_to,
        interface.instance_name()
    );
    let w = PlainWorld::new(
        &[interface, unit],
        &hosts_with_peer_at("203.0.113.2"),
        &format!("{PEER_NAME}:51821"),
        "\n            dynamic_endpoint_refresh_seconds: 1,",
    );
    let sb = &w.sb;
    // The peer answers on a second address, where the name will point.
    sb.must(&format!("ip -n {PEER} address add 203.0.113.3/24 dev ul-b"));
    // The name is resolved where the socket is: in HOST, as `ip netns exec {HOST}` shows it,
    // which would bind /etc/netns/{HOST}/* over /etc (there is none: the sandbox's /etc/hosts).
    assert!(
        !sb.sh(&format!("test -e /etc/netns/{HOST}"))
            .status
            .success(),
        "/etc/netns/{HOST} exists inside"
    );
    let resolved = || {
        sb.must(&format!(
            "ip netns exec {HOST} getent ahostsv4 {PEER_NAME} | head -n1"
        ))
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
    };
    assert_eq!(resolved(), "203.0.113.2", "{PEER_NAME} in {HOST}");
    let before = sb.snapshots(&[HOST]);

    // Up through the interface unit, then the refresh unit's main process.
    w.sb.start_unit(interface, &[]);
    assert_eq!(
        w.endpoint(),
        "203.0.113.2:51821",
        "{what}: endpoint after up"
    );
    assert!(sb.ping(HOST, "192.0.2.2"), "{what}: ping");
    let mut service = sb.spawn_unit(unit, HOST, &[], "refresh.log");
    service.wait_for_log(
        &format!("{INSTANCE}: refreshing 1 peer endpoint known by name"),
        Duration::from_secs(10),
    );
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", service.pid())).unwrap();
    assert_eq!(
        comm.trim(),
        "wg-exec",
        "{what}: the main process is wg-exec"
    );
    // Its first pass (at once) and one more (a period later) see the old address.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(w.endpoint(), "203.0.113.2:51821", "{what}: nothing pushed");

    // DNS changes: the file bound on /etc/hosts is rewritten in place (a new file would not be
    // the one bound).
    let hosts = sb.path("hosts");
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let ino = inode(&hosts);
    {
        use std::io::Write;
        let new = hosts_with_peer_at("203.0.113.3");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&hosts)
            .unwrap();
        f.write_all(new.as_bytes()).unwrap();
        f.set_len(new.len() as u64).unwrap();
    }
    assert_eq!(inode(&hosts), ino, "/etc/hosts rewritten in place");
    assert_eq!(
        resolved(),
        "203.0.113.3",
        "{PEER_NAME} in {HOST} after the change"
    );
    let changed = Instant::now();
    let deadline = changed + Duration::from_secs(5);
    while w.endpoint() != "203.0.113.3:51821" {
        assert!(
            Instant::now() < deadline,
            "{what}: endpoint still {} 5 s after the change: {}",
            w.endpoint(),
            service.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let followed = changed.elapsed();
    let change = "endpoint 203.0.113.2:51821 -> 203.0.113.3:51821";
    service.wait_for_log(change, Duration::from_secs(2));
    assert!(
        sb.ping(HOST, "192.0.2.2"),
        "{what}: ping at the new address"
    );
    assert_eq!(
        w.endpoint(),
        "203.0.113.3:51821",
        "{what}: endpoint after the ping"
    );
    let log = service.log();
    let changes: Vec<&str> = log.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(changes.len(), 1, "{what}: one change, one line: {log}");
    assert!(
        changes[0].contains("peer ") && changes[0].contains(&format!(": {change}")),
        "{what}: the change's line: {log}"
    );

    // The interface unit stops. With BindsTo= systemd would stop the refresh unit too; here it
    // has to notice by itself.
    w.sb.exec_lines(interface, "ExecStop", &[], &interface.stop);
    let (status, ended) = service
        .wait_exit(Duration::from_secs(2))
        .unwrap_or_else(|| {
            panic!(
                "{what}: still running 2 s after ExecStop of {}: {}",
                interface.title,
                service.log()
            )
        });
    let log = service.log();
    assert_eq!(status.code(), Some(0), "{what}: {status}: {log}");
    assert!(
        !unit.restarts_after(status),
        "{what}: Restart={} would start it again after {:?}",
        unit.restart,
        unit.restart_sec
    );
    assert!(
        log.contains(&format!("{INSTANCE} is down: refresh ends")),
        "{what}: says why it ended: {log}"
    );
    w.check_no_trace(interface, &before, what);

    // Up again (the name now resolves to the new address at up), refresh again, and
    // systemd's stop of the refresh unit: SIGTERM.
    w.sb.start_unit(interface, &[]);
    assert_eq!(
        w.endpoint(),
        "203.0.113.3:51821",
        "{what}: endpoint after up"
    );
    let mut service = sb.spawn_unit(unit, HOST, &[], "refresh-2.log");
    service.wait_for_log(
        &format!("{INSTANCE}: refreshing 1 peer endpoint known by name"),
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(1500));
    service.sigterm();
    let (status, stopped) = service
        .wait_exit(Duration::from_secs(1))
        .unwrap_or_else(|| panic!("{what}: still running 1 s after SIGTERM: {}", service.log()));
    let log = service.log();
    assert_eq!(
        status.code(),
        Some(0),
        "{what}: after SIGTERM, {status}: {log}"
    );
    assert!(
        log.contains(&format!("{INSTANCE}: refresh stopped by a signal")),
        "{what}: says why it ended: {log}"
    );
    assert!(!log.contains(" -> "), "{what}: nothing to push: {log}");
    w.sb.exec_lines(interface, "ExecStop", &[], &interface.stop);
    w.check_no_trace(interface, &before, what);
    w.peer_down();
    eprintln!(
        "{what}: endpoint followed {followed:?} after the change; ended {ended:?} after \
         ExecStop; {stopped:?} after SIGTERM"
    );
}
