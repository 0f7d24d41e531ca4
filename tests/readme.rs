//! The README, exercised as written. The test reads README.md at run time and takes from it the
//! ```ron block under "## Example" (with the command list `--print` is said to show) and every
//! ```ini block (the systemd units), so an edited README is what gets tested. There is no systemd
//! here: the units' [Service] settings are carried out by the emulation under "systemd,
//! emulated" below, for interface units (Type=oneshot, RemainAfterExit=yes: ExecStart run to its
//! end, ExecStop later) and service units (Type=simple: ExecStart is the main process, left
//! running, stopped by SIGTERM); it refuses what it does not know.
//!
//! Nothing here touches the machine. Each test runs in ONE private mount namespace of its own
//! (a holder process made by `unshare --mount --propagation private`; commands enter it with
//! `nsenter --mount`), in which:
//! - /run is a fresh tmpfs: /run/netns (so `ip netns add underlay` makes a namespace with exactly
//!   the README's name that nobody else sees), /run/wireguard and /run/wg-exec (so `wg0` cannot
//!   collide with anything else on the machine) are private;
//! - /etc is an overlay on the real /etc (its changes go to a temporary directory), so that
//!   /etc/wg-exec can be a bind-mounted temporary directory although the machine has none, and
//!   /etc/hosts is a bind-mounted file that maps the example's endpoint host name to a test
//!   peer (no DNS query is needed, and the namespaces have no route out of the machine anyway);
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

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The instance (`%i`) and the interface name; the example is /etc/wg-exec/wg0.ron.
const INSTANCE: &str = "wg0";
/// The namespace wg-exec runs in, standing in for the machine's own.
const HOST: &str = "host";
/// The test peer of the units' tunnels.
const PEER: &str = "peer";
/// Where the example's endpoint host name points (203.0.113.2).
const ENDPOINT: &str = "endpoint";
/// The uid and gid a non-root unit's `User=` becomes (the README's `useradd --system wg-exec`).
const UNIT_UID: u32 = 65534;
/// systemd's PATH for system services.
const SYSTEMD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// ------------------------------------------------------------------------------------------
// What the README says.

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// A fenced code block: its language, the `## ` section it stands in, its text (byte for byte,
/// each line with its newline) and the line number of its closing fence.
struct Block {
    lang: String,
    section: String,
    body: String,
    end_line: usize,
}

fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut open: Option<(String, String)> = None;
    for (n, line) in md.lines().enumerate() {
        match open.take() {
            Some((lang, body)) if line.trim_end() == "```" => out.push(Block {
                lang,
                section: section.clone(),
                body,
                end_line: n,
            }),
            Some((lang, mut body)) => {
                body.push_str(line);
                body.push('\n');
                open = Some((lang, body));
            }
            None => {
                if let Some(h) = line.strip_prefix("## ") {
                    section = h.trim().to_string();
                } else if let Some(lang) = line.strip_prefix("```") {
                    open = Some((lang.trim().to_string(), String::new()));
                }
            }
        }
    }
    assert!(open.is_none(), "README.md: a code fence is not closed");
    out
}

/// The example: the configuration as written, and the command list the README says
/// `wg-exec up wg0 --print` shows (the indented lines after that sentence).
struct Example {
    config: String,
    print: Vec<String>,
}

fn example(md: &str) -> Example {
    let all = blocks(md);
    let ron: Vec<&Block> = all
        .iter()
        .filter(|b| b.lang == "ron" && b.section == "Example")
        .collect();
    assert!(
        !ron.is_empty(),
        "README.md: no ```ron block under \"## Example\""
    );
    let block = ron[0];
    let lines: Vec<&str> = md.lines().collect();
    let marker = format!("`wg-exec up {INSTANCE} --print` shows:");
    let mut i = block.end_line + 1;
    while i < lines.len() && !lines[i].contains(&marker) {
        assert!(
            !lines[i].starts_with('#'),
            "README.md: no \"{marker}\" after the example"
        );
        i += 1;
    }
    assert!(i < lines.len(), "README.md: no \"{marker}\"");
    i += 1;
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    let mut print = Vec::new();
    while let Some(l) = lines.get(i).and_then(|l| l.strip_prefix("    ")) {
        print.push(l.to_string());
        i += 1;
    }
    assert!(
        !print.is_empty(),
        "README.md: no indented command list after \"{marker}\""
    );
    Example {
        config: block.body.clone(),
        print,
    }
}

/// The first `FIELD: "VALUE"` of a RON text (FIELD at the start of a word).
fn ron_string(config: &str, field: &str) -> String {
    let key = format!("{field}:");
    let mut from = 0;
    while let Some(at) = config[from..].find(&key).map(|p| p + from) {
        let word_start = match config[..at].chars().last() {
            None => true,
            Some(c) => c.is_whitespace() || c == '(' || c == ',',
        };
        if word_start {
            let rest = config[at + key.len()..].trim_start();
            let rest = rest
                .strip_prefix('"')
                .unwrap_or_else(|| panic!("{field}: not a string in the example"));
            return rest[..rest.find('"').expect("closing quote")].to_string();
        }
        from = at + key.len();
    }
    panic!("the README's example has no {field}");
}

/// What a unit is to the emulation, from its `Type=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Kind {
    /// `Type=oneshot` with `RemainAfterExit=yes`: the interface units. ExecStart runs to its
    /// end (started), ExecStop later (stopped).
    #[default]
    Interface,
    /// `Type=simple`: a long-running service (the refresh unit). ExecStart is its main process;
    /// systemd stops it with SIGTERM (it has no ExecStop) and applies `Restart=` when it ends
    /// by itself.
    Service,
}

/// A unit's [Service] settings that the emulation carries out, and its [Unit] `BindsTo=`.
/// The rest of [Unit] (ordering against other units) and [Install] (enablement) have no
/// meaning without a boot.
#[derive(Clone, Debug, Default)]
struct Unit {
    /// Its first line (the README names the file in a comment there).
    title: String,
    kind: Kind,
    /// `[Unit] BindsTo=`, specifiers resolved.
    binds_to: Vec<String>,
    user: Option<String>,
    runtime_dirs: Vec<String>,
    preserve: bool,
    private_tmp: bool,
    env: Vec<(String, String)>,
    ambient: Vec<String>,
    bounding: Option<Vec<String>>,
    /// `Restart=` (systemd's default: no).
    restart: String,
    /// `RestartSec=` (systemd's default: 100 ms).
    restart_sec: Duration,
    start: Vec<String>,
    reload: Vec<String>,
    stop: Vec<String>,
}

impl Unit {
    fn root(&self) -> bool {
        matches!(self.user.as_deref(), None | Some("root") | Some("0"))
    }
    fn uid(&self) -> u32 {
        if self.root() {
            0
        } else {
            UNIT_UID
        }
    }
    fn interface(&self) -> bool {
        self.kind == Kind::Interface
    }
    /// The unit's file name, from the path in its first line's comment
    /// (`# /etc/systemd/system/wg-exec@.service ...` is `wg-exec@.service`).
    fn file_name(&self) -> String {
        let path = self
            .title
            .strip_prefix('#')
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or_else(|| panic!("{}: the first line does not name the file", self.title));
        path.rsplit('/').next().unwrap().to_string()
    }
    /// The name of its instance `%i` (`wg-exec@.service` is `wg-exec@wg0.service`).
    fn instance_name(&self) -> String {
        let file = self.file_name();
        let (prefix, suffix) = file
            .split_once("@.")
            .unwrap_or_else(|| panic!("{file}: not a template unit"));
        format!("{prefix}@{INSTANCE}.{suffix}")
    }
    /// The state directory its wg-exec uses: WG_EXEC_STATE_DIR from Environment=, else the
    /// default.
    fn state_dir(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "WG_EXEC_STATE_DIR")
            .map_or("/run/wg-exec".to_string(), |(_, v)| v.clone())
    }
    /// Whether systemd restarts this service after its main process ended by itself with
    /// `status` (systemd.service(5), the table under Restart=; SIGHUP, SIGINT, SIGTERM and
    /// SIGPIPE are clean signals). A stop that systemd makes (systemctl stop, BindsTo=) never
    /// restarts.
    fn restarts_after(&self, status: ExitStatus) -> bool {
        use nix::sys::signal::Signal::{SIGHUP, SIGINT, SIGPIPE, SIGTERM};
        use std::os::unix::process::ExitStatusExt;
        let clean = match (status.code(), status.signal()) {
            (Some(code), _) => code == 0,
            (None, Some(sig)) => [SIGHUP, SIGINT, SIGTERM, SIGPIPE]
                .iter()
                .any(|s| *s as i32 == sig),
            (None, None) => false,
        };
        let by_signal = status.signal().is_some();
        match self.restart.as_str() {
            "always" => true,
            "on-success" => clean,
            "on-failure" => !clean,
            "on-abnormal" | "on-abort" => by_signal && !clean,
            // "no"; "on-watchdog" (there is no watchdog here)
            _ => false,
        }
    }
}

fn systemd_bool(key: &str, v: &str) -> bool {
    match v {
        "yes" | "true" | "on" | "1" => true,
        "no" | "false" | "off" | "0" => false,
        _ => panic!("{key}={v}: not a boolean"),
    }
}

/// A systemd time span as `RestartSec=` takes it: seconds without a unit, or numbers with
/// `ms`, `s`, `min` (e.g. `5`, `500ms`, `1min 30s`).
fn systemd_timespan(key: &str, v: &str) -> Duration {
    let mut total = Duration::ZERO;
    for word in v.split_whitespace() {
        let at = word
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(word.len());
        let n: u64 = word[..at]
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v}: the emulation knows whole numbers only"));
        total += match &word[at..] {
            "" | "s" | "sec" => Duration::from_secs(n),
            "ms" | "msec" => Duration::from_millis(n),
            "min" | "m" => Duration::from_secs(60 * n),
            other => panic!("{key}={v}: the emulation does not know the unit {other:?}"),
        };
    }
    total
}

fn capabilities(key: &str, v: &str) -> Vec<String> {
    v.split_whitespace()
        .map(|c| {
            assert!(
                c.starts_with("CAP_"),
                "{key}={v}: the emulation knows only lists of CAP_ names"
            );
            c.to_string()
        })
        .collect()
}

fn parse_unit(text: &str) -> Unit {
    let mut unit = Unit {
        title: text.lines().next().unwrap_or("").to_string(),
        restart: "no".to_string(),
        restart_sec: Duration::from_millis(100),
        ..Unit::default()
    };
    let mut section = "";
    let mut unknown = Vec::new();
    let (mut kind, mut remain) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line;
            continue;
        }
        let (key, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("unit line without '=': {line}"));
        let (key, v) = (key.trim(), v.trim());
        if section == "[Unit]" && key == "BindsTo" {
            unit.binds_to.extend(v.split_whitespace().map(specifiers));
        }
        if section != "[Service]" {
            continue;
        }
        match key {
            "Type" => {
                kind = Some(match v {
                    // ExecStart runs to its end and ExecStop later, which is what this means
                    // with RemainAfterExit=yes.
                    "oneshot" => Kind::Interface,
                    // ExecStart is the main process, SIGTERM stops it.
                    "simple" => Kind::Service,
                    _ => panic!("Type={v}: the emulation knows Type=oneshot and Type=simple only"),
                })
            }
            "RemainAfterExit" => remain = Some(systemd_bool(key, v)),
            "Restart" => {
                assert!(
                    [
                        "no",
                        "always",
                        "on-success",
                        "on-failure",
                        "on-abnormal",
                        "on-abort",
                        "on-watchdog"
                    ]
                    .contains(&v),
                    "{key}={v}: not a value systemd knows"
                );
                unit.restart = v.to_string();
            }
            "RestartSec" => unit.restart_sec = systemd_timespan(key, v),
            "User" => unit.user = Some(v.to_string()),
            "RuntimeDirectory" => unit
                .runtime_dirs
                .extend(v.split_whitespace().map(str::to_string)),
            "RuntimeDirectoryPreserve" => {
                unit.preserve = v == "restart" || systemd_bool(key, v);
            }
            "PrivateTmp" => unit.private_tmp = systemd_bool(key, v),
            "Environment" => {
                for word in v.split_whitespace() {
                    let word = word.trim_matches('"');
                    let (k, val) = word
                        .split_once('=')
                        .unwrap_or_else(|| panic!("Environment={v}: {word} has no '='"));
                    unit.env.push((k.to_string(), specifiers(val)));
                }
            }
            "AmbientCapabilities" => unit.ambient.extend(capabilities(key, v)),
            "CapabilityBoundingSet" => unit
                .bounding
                .get_or_insert_with(Vec::new)
                .extend(capabilities(key, v)),
            "ExecStart" => unit.start.push(v.to_string()),
            "ExecStop" => unit.stop.push(v.to_string()),
            "ExecReload" => unit.reload.push(v.to_string()),
            other => unknown.push(other.to_string()),
        }
    }
    let title = unit.title.clone();
    assert!(
        unknown.is_empty(),
        "{title}: the emulation in tests/readme.rs does not know {unknown:?}; teach it"
    );
    // systemd's default is Type=simple, but a unit here says what it is.
    unit.kind = kind.unwrap_or_else(|| panic!("{title}: no Type="));
    match unit.kind {
        Kind::Interface => {
            assert_eq!(
                remain,
                Some(true),
                "{title}: Type=oneshot without RemainAfterExit=yes would run ExecStop right \
                 after ExecStart"
            );
            assert!(
                !unit.start.is_empty() && !unit.stop.is_empty(),
                "{title}: an interface unit needs ExecStart= and ExecStop="
            );
            assert_eq!(
                unit.restart, "no",
                "{title}: the emulation does not restart a Type=oneshot unit"
            );
        }
        Kind::Service => {
            assert_eq!(
                remain, None,
                "{title}: RemainAfterExit= with Type=simple is not emulated"
            );
            assert_eq!(
                unit.start.len(),
                1,
                "{title}: Type=simple takes exactly one ExecStart="
            );
            assert!(
                unit.stop.is_empty() && unit.reload.is_empty(),
                "{title}: the emulation stops a Type=simple unit with SIGTERM, as systemd \
                 does without ExecStop=, and does not know ExecReload= for it"
            );
        }
    }
    unit
}

/// Every ```ini block of the README, as a unit; at least two interface units (the root and
/// the non-root one).
fn units(md: &str) -> Vec<Unit> {
    let units: Vec<Unit> = blocks(md)
        .iter()
        .filter(|b| b.lang == "ini")
        .map(|b| parse_unit(&b.body))
        .collect();
    let interfaces = units.iter().filter(|u| u.interface()).count();
    assert!(
        interfaces >= 2,
        "README.md: {interfaces} ```ini interface unit blocks (Type=oneshot), expected the root \
         and the non-root unit"
    );
    units
}

/// The README's interface units (Type=oneshot) that run as root (`root`) or not.
fn interface_units(md: &str, root: bool) -> Vec<Unit> {
    units(md)
        .into_iter()
        .filter(|u| u.interface() && u.root() == root)
        .collect()
}

/// The README's Type=simple units whose ExecStart is `wg-exec refresh %i`.
fn refresh_units(md: &str) -> Vec<Unit> {
    units(md)
        .into_iter()
        .filter(|u| {
            u.kind == Kind::Service
                && exec_argv(&u.start[0]).get(1).map(String::as_str) == Some("refresh")
        })
        .collect()
}

/// systemd's specifiers in a value: `%i` is the instance, `%%` a percent sign.
fn specifiers(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('i') => out.push_str(INSTANCE),
            Some('%') => out.push('%'),
            other => panic!("{v}: the emulation does not know the specifier %{other:?}"),
        }
    }
    out
}

/// An Exec line as argv: no prefixes, no quoting (the README's lines have neither).
fn exec_argv(line: &str) -> Vec<String> {
    assert!(
        line.starts_with('/'),
        "{line}: the emulation knows absolute paths without the -@:+! prefixes only"
    );
    assert!(
        !line.contains(['"', '\'', '\\', '$', ';']),
        "{line}: the emulation does not know quoting or variables"
    );
    line.split_whitespace().map(specifiers).collect()
}

// ------------------------------------------------------------------------------------------
// The private mount namespace.

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Kills every process in the private network namespaces and deletes them.
const CLEANUP: &str = "for n in $(ip netns list 2>/dev/null | cut -d' ' -f1); do \
     ip netns pids \"$n\" 2>/dev/null | xargs -r kill -9; ip netns del \"$n\"; done";

struct Sandbox {
    /// A temporary directory in /var/tmp (a unit's PrivateTmp= does not hide what is bound
    /// from it before).
    dir: Keys,
    holder: Child,
    _holder_out: BufReader<ChildStdout>,
}

impl Sandbox {
    /// A private mount namespace as described at the top; `hosts` is its /etc/hosts.
    fn new(hosts: &str) -> Sandbox {
        let dir = Keys::new();
        let d = dir.dir.path().to_path_buf();
        for sub in ["etc-upper", "etc-work", "etc-wg-exec", "tmp", "var-tmp"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("hosts"), hosts).unwrap();
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(format!("echo ready; read _; {CLEANUP}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn unshare");
        let mut out = BufReader::new(holder.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let sb = Sandbox {
            dir,
            holder,
            _holder_out: out,
        };
        assert_eq!(line.trim(), "ready", "the private mount namespace");
        // Not the machine's: a namespace of our own, else the mounts below would be global.
        assert_ne!(
            sb.must("readlink /proc/self/ns/mnt"),
            must("readlink /proc/self/ns/mnt"),
            "nsenter entered the private mount namespace"
        );
        let d = d.display();
        sb.must(&format!(
            "set -e
             mount -t overlay wg-exec-readme -o lowerdir=/etc,upperdir={d}/etc-upper,workdir={d}/etc-work /etc
             mkdir /etc/wg-exec
             mount --bind {d}/etc-wg-exec /etc/wg-exec
             mount --bind {d}/hosts /etc/hosts
             mount -t tmpfs -o mode=0755 wg-exec-readme /run
             mkdir -m 0755 /run/netns
             mount -t tmpfs -o mode=0755 wg-exec-readme /dev/net
             mknod -m 0666 /dev/net/tun c 10 200"
        ));
        sb
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.dir.path().join(rel)
    }

    /// Where a path under /etc/wg-exec (inside) is on the machine.
    fn etc_wg_exec(&self, inside: &str) -> PathBuf {
        let rel = inside
            .strip_prefix("/etc/wg-exec/")
            .unwrap_or_else(|| panic!("{inside} is not under /etc/wg-exec"));
        self.path("etc-wg-exec").join(rel)
    }

    /// A shell command in the private mount namespace (as root, in the machine's network
    /// namespace: every command that touches the network says `ip netns exec` or `ip -n`).
    fn sh(&self, cmd: &str) -> Output {
        Command::new("nsenter")
            .arg(format!("--target={}", self.holder.id()))
            .args(["--mount", "--", "/bin/sh", "-c", cmd])
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    fn must(&self, cmd: &str) -> String {
        let out = self.sh(cmd);
        assert!(
            out.status.success(),
            "`{cmd}` failed ({}): {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// A network namespace with a name private to this sandbox.
    fn netns(&self, name: &str) {
        self.must(&format!(
            "ip netns add {name} && ip netns exec {name} sysctl -qw \
             net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 && \
             ip -n {name} link set lo up"
        ));
    }

    /// A veth between `a` (203.0.113.1/24, 2001:db8:ffff::1/64) and `b` (.2, ::2), settled
    /// (IPv6 link-local routes in place) so that snapshots compare.
    fn veth(&self, a: &str, b: &str) {
        self.must(&format!(
            "ip -n {a} link add ul-a type veth peer name ul-b netns {b}"
        ));
        for (ns, dev, n) in [(a, "ul-a", 1), (b, "ul-b", 2)] {
            self.must(&format!(
                "ip -n {ns} address add 203.0.113.{n}/24 dev {dev} && \
                 ip -n {ns} address add 2001:db8:ffff::{n}/64 dev {dev} nodad && \
                 ip -n {ns} link set {dev} up"
            ));
        }
        for (ns, dev) in [(a, "ul-a"), (b, "ul-b")] {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self
                .must(&format!("ip -n {ns} -6 route show table local dev {dev}"))
                .contains("ff00::/8")
                || !self
                    .must(&format!("ip -n {ns} -6 route show dev {dev}"))
                    .contains("fe80::/64")
            {
                assert!(Instant::now() < deadline, "IPv6 on {dev} did not come up");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Links, addresses, routes of all tables and rules of a namespace, as `ip -j` shows them.
    fn snapshot(&self, ns: &str) -> String {
        let mut s = String::new();
        for what in [
            "link show",
            "address show",
            "-4 route show table all",
            "-6 route show table all",
            "-4 rule show",
            "-6 rule show",
        ] {
            s.push_str(&format!("== {what}\n"));
            s.push_str(&strip_volatile(
                &self.must(&format!("ip -n {ns} -j {what}")),
            ));
            s.push('\n');
        }
        s
    }

    fn snapshots(&self, spaces: &[&str]) -> Vec<(String, String)> {
        spaces
            .iter()
            .map(|ns| (ns.to_string(), self.snapshot(ns)))
            .collect()
    }

    fn has_link(&self, ns: &str, dev: &str) -> bool {
        self.sh(&format!("ip -n {ns} link show dev {dev}"))
            .status
            .success()
    }

    /// `uid args` of every process in a network namespace.
    fn processes(&self, ns: &str) -> String {
        self.must(&format!(
            "ip netns pids {ns} | xargs -r ps -o uid=,args= -p"
        ))
    }

    fn wg_dump(&self, ns: &str, dev: &str) -> Vec<Vec<String>> {
        self.must(&format!("ip netns exec {ns} wg show {dev} dump"))
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// Pings until one answer arrives, for at most 20 s (the first handshake may be lost and
    /// is retried after 5 s).
    fn ping(&self, ns: &str, addr: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .sh(&format!("ip netns exec {ns} ping -c 1 -W 1 {addr}"))
                .status
                .success()
            {
                return true;
            }
        }
        false
    }

    /// The entries of a directory inside (none when it does not exist).
    fn entries(&self, dir: &str) -> String {
        self.must(&format!("ls -A {dir} 2>/dev/null || true"))
    }

    /// Every file under /etc/wg-exec with its mode and owner.
    fn config_files(&self) -> String {
        self.must("find /etc/wg-exec -printf '%P %m %U\\n' | sort")
    }

    /// wg-exec as root, the way a user types it, inside the namespace standing in for the
    /// machine's own, with a clean environment (no inherited WG_EXEC_STATE_DIR,
    /// WG_PROCESS_FOREGROUND, ...). WG_ENDPOINT_RESOLUTION_RETRIES=0: a failed lookup fails at
    /// once.
    fn wg_exec_as_root(&self, args: &str) -> Output {
        self.sh(&format!(
            "timeout -k 5 90 ip netns exec {HOST} env -i PATH={SYSTEMD_PATH} \
             WG_ENDPOINT_RESOLUTION_RETRIES=0 {} {args} </dev/null",
            wg_exec_bin()
        ))
    }

    // --- systemd, emulated ---
    //
    // There is no systemd here: this carries out the [Service] settings of a README unit the
    // way systemd does (Type=oneshot with RemainAfterExit=yes, Type=simple, Restart=,
    // RestartSec=, User=, RuntimeDirectory=, RuntimeDirectoryPreserve=, PrivateTmp=,
    // Environment=, AmbientCapabilities=, CapabilityBoundingSet=, ExecStart=, ExecReload=,
    // ExecStop=, %i). Booting a real systemd with these units is another test's job.

    /// What systemd prepares for a unit: the program of its Exec lines (resolving to the test's
    /// binary: a tmpfs on its directory, inside only, made once for all units), its
    /// RuntimeDirectory= owned by its user, the directories of its PrivateTmp=.
    fn install_unit(&self, unit: &Unit) {
        for line in unit.start.iter().chain(&unit.reload).chain(&unit.stop) {
            let program = exec_argv(line)[0].clone();
            let path = Path::new(&program);
            assert_eq!(
                path.file_name().and_then(|f| f.to_str()),
                Some("wg-exec"),
                "{}: {line} does not run wg-exec",
                unit.title
            );
            let dir = path.parent().unwrap().display().to_string();
            self.must(&format!(
                "grep -q '^wg-exec-readme {dir} ' /proc/self/mounts || \
                 mount -t tmpfs -o mode=0755 wg-exec-readme {dir}"
            ));
            self.must(&format!(
                "[ -e {program} ] || {{ touch {program} && mount --bind {} {program}; }}",
                wg_exec_bin()
            ));
        }
        let uid = unit.uid();
        for d in &unit.runtime_dirs {
            self.must(&format!("install -d -m 0755 -o {uid} -g {uid} /run/{d}"));
        }
        for d in ["tmp", "var-tmp"] {
            std::fs::set_permissions(
                self.path(d),
                std::os::unix::fs::PermissionsExt::from_mode(0o1777),
            )
            .unwrap();
        }
    }

    /// The shell command (for `sh`) that runs one Exec line of a unit as systemd runs it: a
    /// mount namespace of the unit's own (its PrivateTmp=), a clean environment (PATH,
    /// RUNTIME_DIRECTORY, Environment=), the unit's user and capabilities, stdin from
    /// /dev/null. It runs inside network namespace `ns` (entered as root first, as
    /// `ip netns exec` needs), standing in for the machine's own. `extra_env` is the test's own
    /// addition, said where it is used. With `limit`, `timeout` ends it after that many
    /// seconds; without, every link of the chain execs the next (nsenter, sh, unshare, sh,
    /// `ip netns exec`, env, setpriv), so that the process started is in the end wg-exec
    /// itself, the unit's main process.
    fn unit_command(
        &self,
        unit: &Unit,
        ns: &str,
        line: &str,
        extra_env: &[(&str, &str)],
        limit: Option<u32>,
    ) -> String {
        let argv: Vec<String> = exec_argv(line).iter().map(|a| q(a)).collect();
        let mut env = vec![format!("PATH={SYSTEMD_PATH}")];
        if !unit.runtime_dirs.is_empty() {
            let dirs: Vec<String> = unit
                .runtime_dirs
                .iter()
                .map(|d| format!("/run/{d}"))
                .collect();
            env.push(format!("RUNTIME_DIRECTORY={}", dirs.join(":")));
        }
        for (k, v) in &unit.env {
            env.push(q(&format!("{k}={v}")));
        }
        for (k, v) in extra_env {
            env.push(q(&format!("{k}={v}")));
        }
        let caps = |list: &[String]| -> String {
            let mut s = String::from("-all");
            for c in list {
                s.push_str(&format!(
                    ",+{}",
                    c.trim_start_matches("CAP_").to_lowercase()
                ));
            }
            s
        };
        let mut setpriv = Vec::new();
        if !unit.root() {
            setpriv.push(format!(
                "--reuid={UNIT_UID} --regid={UNIT_UID} --clear-groups"
            ));
        }
        if !unit.root() || !unit.ambient.is_empty() {
            let ambient = caps(&unit.ambient);
            setpriv.push(format!("--inh-caps={ambient} --ambient-caps={ambient}"));
        }
        if let Some(b) = &unit.bounding {
            setpriv.push(format!("--bounding-set={}", caps(b)));
        }
        let setpriv = if setpriv.is_empty() {
            String::new()
        } else {
            format!("setpriv {}", setpriv.join(" "))
        };
        let private_tmp = if unit.private_tmp {
            format!(
                "mount --bind {} /tmp && mount --bind {} /var/tmp && ",
                self.path("tmp").display(),
                self.path("var-tmp").display()
            )
        } else {
            String::new()
        };
        let timeout = limit.map_or(String::new(), |s| format!("timeout -k 5 {s} "));
        let inner = format!(
            "{private_tmp}exec {timeout}ip netns exec {ns} env -i {} {setpriv} {} </dev/null",
            env.join(" "),
            argv.join(" ")
        );
        format!(
            "exec unshare --mount --propagation private /bin/sh -c {}",
            q(&inner)
        )
    }

    /// One Exec line of a unit, run to its end (at most 90 s), as systemd runs the Exec lines
    /// of a Type=oneshot unit; see `unit_command`.
    fn exec_unit(&self, unit: &Unit, ns: &str, line: &str, extra_env: &[(&str, &str)]) -> Output {
        self.sh(&self.unit_command(unit, ns, line, extra_env, Some(90)))
    }

    /// The ExecStart of a Type=simple unit, started and not waited for: its main process, with
    /// stdout and stderr (systemd's journal) to the file `log` in the sandbox's directory.
    fn spawn_unit(&self, unit: &Unit, ns: &str, extra_env: &[(&str, &str)], log: &str) -> Service {
        assert_eq!(unit.kind, Kind::Service, "{}: not Type=simple", unit.title);
        let log = self.path(log);
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--target={}", self.holder.id()))
            .args(["--mount", "--", "/bin/sh", "-c"])
            .arg(self.unit_command(unit, ns, &unit.start[0], extra_env, None))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("spawn nsenter");
        Service {
            what: unit.title.clone(),
            child,
            log,
        }
    }

    /// systemd's stop: after ExecStop, a RuntimeDirectory= goes unless preserved.
    fn unit_stopped(&self, unit: &Unit) {
        if !unit.preserve {
            for d in &unit.runtime_dirs {
                self.must(&format!("rm -rf /run/{d}"));
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.sh(CLEANUP);
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}

/// A Type=simple unit started by `spawn_unit`: its main process (wg-exec itself, through the
/// chain of execs) and its log. Dropped while running (a failed test), it is killed; the
/// sandbox's cleanup would kill it too, with everything in its network namespace.
struct Service {
    what: String,
    child: Child,
    log: PathBuf,
}

impl Service {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        text(&std::fs::read(&self.log).unwrap_or_default())
    }

    /// None while running.
    fn status(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .expect("wait for the unit's main process")
    }

    /// Waits at most `limit` for a log line that contains `needle`, while the main process
    /// runs; how long it took.
    fn wait_for_log(&mut self, needle: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.log().lines().any(|l| l.contains(needle)) {
                return start.elapsed();
            }
            if let Some(status) = self.status() {
                panic!(
                    "{}: ended ({status}) before saying {needle:?}: {}",
                    self.what,
                    self.log()
                );
            }
            assert!(
                start.elapsed() < limit,
                "{}: did not say {needle:?} within {limit:?}: {}",
                self.what,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits at most `limit` for the main process to end: its status and how long it took,
    /// or None if it still runs.
    fn wait_exit(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.status() {
                return Some((status, start.elapsed()));
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What systemd does to stop a unit without ExecStop=: its KillSignal= (SIGTERM) to the
    /// main process.
    fn sigterm(&self) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Drops fields that change on their own (as tests/common does for its snapshots).
fn strip_volatile(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for part in json.split(',') {
        if [
            "\"expires\"",
            "\"used\"",
            "\"valid_life_time\"",
            "\"preferred_life_time\"",
        ]
        .iter()
        .any(|k| part.trim_start_matches(['{', '[']).starts_with(k))
        {
            continue;
        }
        out.push_str(part);
        out.push(',');
    }
    out
}

/// The top-level objects of the JSON array `ip -j` prints.
fn json_objects(json: &str) -> Vec<String> {
    let (mut out, mut cur) = (Vec::new(), String::new());
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for c in json.chars() {
        if depth > 0 {
            cur.push(c);
        }
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => {
                if depth == 0 {
                    cur.push(c);
                }
                depth += 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => {}
        }
    }
    out
}

fn assert_same(sb: &Sandbox, before: &[(String, String)], what: &str) {
    for (ns, b) in before {
        assert_eq!(
            &sb.snapshot(ns),
            b,
            "{what}: namespace {ns} is not as it was before"
        );
    }
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

#[test]
fn readme_has_the_example_its_print_output_and_two_units() {
    if !real_environment("readme_has_the_example_its_print_output_and_two_units") {
        return;
    }
    let md = readme();
    let ex = example(&md);
    assert!(ex.config.contains("Interface("), "{}", ex.config);
    assert!(ex.print.len() >= 5, "{:?}", ex.print);
    assert!(!interface_units(&md, true).is_empty(), "a root unit");
    assert!(!interface_units(&md, false).is_empty(), "a non-root unit");
    let refresh = refresh_units(&md);
    assert!(!refresh.is_empty(), "a unit running `wg-exec refresh %i`");
    for u in &refresh {
        assert_eq!(u.file_name(), "wg-exec-refresh@.service", "{}", u.title);
    }
}

/// The emulation itself (no root needed): what it takes from a unit, and that it refuses what
/// it would not carry out as systemd does, loudly, instead of running it some other way.
#[test]
fn readme_unit_emulation_refuses_what_it_does_not_know() {
    use std::os::unix::process::ExitStatusExt;
    let unit = |service: &str| {
        format!(
            "# /etc/systemd/system/x@.service\n[Unit]\nBindsTo=wg-exec@%i.service\n\
             [Service]\n{service}\n[Install]\nWantedBy=wg-exec@%i.service\n"
        )
    };
    let start = "ExecStart=/usr/local/sbin/wg-exec refresh %i";
    let simple = parse_unit(&unit(&format!(
        "Type=simple\n{start}\nRestart=on-failure\nRestartSec=1min 30s"
    )));
    assert_eq!(simple.kind, Kind::Service);
    assert!(!simple.interface());
    assert_eq!(simple.binds_to, ["wg-exec@wg0.service"]);
    assert_eq!(simple.instance_name(), "x@wg0.service");
    assert_eq!(simple.restart_sec, Duration::from_secs(90));
    // on-failure: a non-zero exit or an unclean signal, not exit 0 or SIGTERM.
    for (raw, restarts) in [(0, false), (1 << 8, true), (15, false), (9, true)] {
        assert_eq!(
            simple.restarts_after(ExitStatus::from_raw(raw)),
            restarts,
            "{:?}",
            ExitStatus::from_raw(raw)
        );
    }
    let oneshot = parse_unit(&unit(
        "Type=oneshot\nRemainAfterExit=yes\nExecStart=/usr/local/sbin/wg-exec up %i\n\
         ExecStop=/usr/local/sbin/wg-exec down %i",
    ));
    assert!(oneshot.interface());
    assert_eq!(oneshot.restart, "no");
    let stop = "ExecStop=/usr/local/sbin/wg-exec down %i";
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
            "KillMode",
        ),
        (
            format!("Type=simple\n{start}\nRestart=sometimes"),
            "sometimes",
        ),
        (format!("Type=simple\n{start}\nRestartSec=5h"), "\"h\""),
    ] {
        let text = unit(&service);
        let err = std::panic::catch_unwind(|| parse_unit(&text))
            .expect_err(&format!("accepted: {service}"));
        let msg = err
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(msg.contains(says), "{service}: {msg}");
    }
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
    assert!(
        sb.entries("/run/wg-exec").contains("wg0.ron"),
        "the journal while up"
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
    w.check_no_trace(&before, "/run/wg-exec");
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
    /// `units` are installed; the first is the interface unit, whose user must be able to read
    /// /etc/wg-exec. `hosts` is the sandbox's /etc/hosts; `endpoint` is the peer's endpoint as
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
        if !units[0].root() {
            // "with /etc/wg-exec and its key files readable by that user"
            must(&format!("chown -R {UNIT_UID}:{UNIT_UID} {}", etc.display()));
        }
        PlainWorld {
            sb,
            public,
            psk,
            peer,
        }
    }

    /// The lines of a unit's Exec setting (`which`), each run to its end and successful.
    fn exec(&self, unit: &Unit, which: &str, lines: &[String]) {
        for line in lines {
            let out = self.sb.exec_unit(unit, HOST, line, &[]);
            assert!(
                out.status.success(),
                "{}: {which}={line} failed ({}): {}",
                unit.title,
                out.status,
                text(&out.stderr)
            );
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
        sb.unit_stopped(unit);
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

    w.exec(unit, "ExecStart", &unit.start);
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
        w.exec(unit, "ExecReload", &unit.reload);
        let after = sb.wg_dump(HOST, INSTANCE);
        assert_eq!(after[1][7], "15", "{what}: keepalive after reload");
        assert_eq!(after[1][4], handshake, "{what}: the session was kept");
        assert!(sb.ping(HOST, "192.0.2.2"), "{what}: ping after reload");
    }

    w.exec(unit, "ExecStop", &unit.stop);
    w.check_no_trace(unit, &before, what);
    w.peer_down();
}

/// A command for the test peer: in namespace PEER, with a /run of its own (its UAPI socket,
/// its journal), so that it shares nothing with the unit, whose /run/wireguard may belong to
/// the unit's user (wg-exec as root keeps only the capabilities it needs, not
/// CAP_DAC_OVERRIDE, so its wireguard-go could not write there).
fn peer_sh(sb: &Sandbox, cmd: &str) -> Output {
    let inner = format!(
        "mount --bind {} /run && exec env -i PATH={SYSTEMD_PATH} {cmd} </dev/null",
        sb.path("peer/run").display()
    );
    sb.sh(&format!(
        "ip netns exec {PEER} unshare --mount --propagation private /bin/sh -c {}",
        q(&inner)
    ))
}

/// The test peer: wireguard-go in namespace PEER brought up with wg-exec as root (its
/// configuration outside /etc/wg-exec, its /run its own), first, so that it answers
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
    let units = interface_units(&readme(), true);
    assert!(!units.is_empty(), "README.md: no root unit");
    for unit in &units {
        plain_configuration_through(unit);
    }
}

/// The non-root unit with exactly the capabilities it lists.
#[test]
fn readme_non_root_unit_runs_a_plain_configuration() {
    if !real_environment("readme_non_root_unit_runs_a_plain_configuration") {
        return;
    }
    let units = interface_units(&readme(), false);
    assert!(!units.is_empty(), "README.md: no non-root unit");
    for unit in &units {
        plain_configuration_through(unit);
    }
}

/// The README's non-root units, with CAP_SYS_ADMIN added to both capability lines or not.
fn non_root_units(add_sys_admin: bool) -> Vec<Unit> {
    let units = interface_units(&readme(), false);
    assert!(!units.is_empty(), "README.md: no non-root unit");
    units
        .into_iter()
        .map(|mut u| {
            assert!(
                !u.ambient.iter().any(|c| c == "CAP_SYS_ADMIN"),
                "{}: already has CAP_SYS_ADMIN",
                u.title
            );
            if add_sys_admin {
                u.ambient.push("CAP_SYS_ADMIN".into());
                u.bounding
                    .as_mut()
                    .expect("a CapabilityBoundingSet= line to add CAP_SYS_ADMIN to")
                    .push("CAP_SYS_ADMIN".into());
            }
            u
        })
        .collect()
}

/// The README: a configuration that names namespaces needs CAP_SYS_ADMIN in both capability
/// lines of the non-root unit. The example configuration through that unit, with it added.
#[test]
fn readme_non_root_unit_with_cap_sys_admin_runs_the_example() {
    if !real_environment("readme_non_root_unit_with_cap_sys_admin_runs_the_example") {
        return;
    }
    let ex = example(&readme());
    for unit in non_root_units(true) {
        let what = &unit.title;
        let w = ExampleWorld::new(&ex);
        let sb = &w.sb;
        sb.install_unit(&unit);
        must(&format!(
            "chown -R {UNIT_UID}:{UNIT_UID} {}",
            sb.path("etc-wg-exec").display()
        ));
        let before = sb.snapshots(&w.spaces());
        // The test's addition: a failed lookup fails at once instead of being retried.
        let env = [("WG_ENDPOINT_RESOLUTION_RETRIES", "0")];
        for line in &unit.start {
            let out = sb.exec_unit(&unit, HOST, line, &env);
            assert!(
                out.status.success(),
                "{what}: ExecStart={line} failed ({}): {}",
                out.status,
                text(&out.stderr)
            );
        }
        w.check_up(UNIT_UID);
        for line in &unit.stop {
            let out = sb.exec_unit(&unit, HOST, line, &env);
            assert!(
                out.status.success(),
                "{what}: ExecStop={line} failed ({}): {}",
                out.status,
                text(&out.stderr)
            );
        }
        w.check_no_trace(&before, "/run/wg-exec");
        sb.unit_stopped(&unit);
    }
}

/// The same without CAP_SYS_ADMIN: exit 2 naming it, nothing changed.
#[test]
fn readme_non_root_unit_without_cap_sys_admin_refuses_the_example() {
    if !real_environment("readme_non_root_unit_without_cap_sys_admin_refuses_the_example") {
        return;
    }
    let ex = example(&readme());
    for unit in non_root_units(false) {
        let what = &unit.title;
        let w = ExampleWorld::new(&ex);
        let sb = &w.sb;
        sb.install_unit(&unit);
        must(&format!(
            "chown -R {UNIT_UID}:{UNIT_UID} {}",
            sb.path("etc-wg-exec").display()
        ));
        let before = sb.snapshots(&w.spaces());
        let files = sb.config_files();
        let env = [("WG_ENDPOINT_RESOLUTION_RETRIES", "0")];
        let out = sb.exec_unit(&unit, HOST, &unit.start[0], &env);
        let log = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: ExecStart: {log}");
        assert!(log.contains("CAP_SYS_ADMIN"), "{what}: names it: {log}");
        assert_eq!(sb.config_files(), files, "{what}: /etc/wg-exec changed");
        w.check_no_trace(&before, "/run/wg-exec");
    }
}

/// The host name of the refresh test's peer endpoint, in the sandbox's /etc/hosts.
const PEER_NAME: &str = "peer.wg-exec.test";

/// The refresh test's /etc/hosts: PEER_NAME is `addr`. The same length for 203.0.113.2 and
/// 203.0.113.3, so that rewriting it in place never shows a reader a short file.
fn hosts_with_peer_at(addr: &str) -> String {
    format!("127.0.0.1 localhost\n::1 localhost\n{addr} {PEER_NAME}\n")
}

/// The README's refresh unit (Type=simple, `wg-exec refresh %i`) beside the root interface
/// unit, with the plain configuration whose peer's endpoint is a host name re-resolved every
/// second: it follows a change of /etc/hosts (the new address pushed, one log line), it ends
/// by itself with exit 0 when the interface unit's ExecStop takes the interface down (what
/// BindsTo= would also do, by SIGTERM), and SIGTERM (systemd's stop) ends it with exit 0
/// within a second. No trace either time.
#[test]
fn readme_refresh_unit_follows_dns_and_ends_with_its_interface() {
    if !real_environment("readme_refresh_unit_follows_dns_and_ends_with_its_interface") {
        return;
    }
    let md = readme();
    let interface = interface_units(&md, true)
        .into_iter()
        .next()
        .expect("README.md: no root interface unit");
    let refresh = refresh_units(&md);
    assert!(
        !refresh.is_empty(),
        "README.md: no Type=simple unit runs `wg-exec refresh %i`"
    );
    for unit in &refresh {
        refresh_through(&interface, unit);
    }
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
    w.exec(interface, "ExecStart", &interface.start);
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
    w.exec(interface, "ExecStop", &interface.stop);
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
    w.exec(interface, "ExecStart", &interface.start);
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
    w.exec(interface, "ExecStop", &interface.stop);
    w.check_no_trace(interface, &before, what);
    w.peer_down();
    eprintln!(
        "{what}: endpoint followed {followed:?} after the change; ended {ended:?} after \
         ExecStop; {stopped:?} after SIGTERM"
    );
}
