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

mod support;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// The instance (`%i`) and the interface name; the example is /etc/wg-exec/wg0.ron.
const INSTANCE: &str = "wg0";
/// The namespace wg-exec runs in, standing in for the machine's own.
const HOST: &str = "host";
/// The test peer of the units' tunnels.
const PEER: &str = "peer";
/// Where the example's endpoint host name points (203.0.113.2).
const ENDPOINT: &str = "endpoint";
/// The uid and gid a non-root unit's `User=` and `Group=` become (the package's system user
/// and group `wg-exec`, which this machine need not have).
const UNIT_UID: u32 = 65534;
/// systemd's PATH for system services.
const SYSTEMD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the shipped units are.
const SYSTEMD_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd");
/// The interface unit (as root).
const INTERFACE_UNIT: &str = "wg-exec@.service";
/// The drop-in for INTERFACE_UNIT that makes it the non-root unit.
const NON_ROOT_DROPIN: &str = "non-root.conf";
const NON_ROOT_REFRESH_DROPIN: &str = "non-root-refresh.conf";
/// The refresh unit (Type=simple, `wg-exec refresh %i`).
const REFRESH_UNIT: &str = "wg-exec-refresh@.service";

/// [Service] settings that only harden a unit: accepted and NOT emulated. They take away what
/// wg-exec does not need (file system writes, devices, address families, system calls,
/// namespaces, ...), which only a real systemd can enforce faithfully; the systemd VM test
/// (`scripts/vm-test --systemd`, which boots real systemd with the shipped units) runs the
/// units with them. What wg-exec's work depends on is emulated instead: User=, Group=,
/// AmbientCapabilities=, CapabilityBoundingSet=, StateDirectory=, RuntimeDirectory=,
/// PrivateTmp=, UMask=, Environment=. A setting in neither list is refused.
const HARDENING: &[&str] = &[
    "NoNewPrivileges",
    "ProtectSystem",
    "ReadWritePaths",
    "ProtectHome",
    "PrivateDevices",
    "DevicePolicy",
    "DeviceAllow",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectClock",
    "ProtectHostname",
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "SystemCallArchitectures",
    "SystemCallFilter",
    "SystemCallErrorNumber",
    "LimitCORE",
    "ProtectProc",
];

/// [Unit] settings that have no meaning without a boot (description, documentation, ordering
/// and dependencies against other units, start rate limits); `BindsTo=` is also read, for the
/// refresh test. Others are refused.
const UNIT_SECTION: &[&str] = &[
    "Description",
    "Documentation",
    "After",
    "Before",
    "Wants",
    "Requires",
    "BindsTo",
    "PartOf",
    "StartLimitIntervalSec",
    "StartLimitBurst",
];

/// [Install] settings: enablement only. Others are refused.
const INSTALL_SECTION: &[&str] = &["WantedBy", "RequiredBy", "Alias", "Also"];

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

/// The text of a `## ` section of a Markdown file, without its heading.
fn section(md: &str, title: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            inside = h.trim() == title;
            continue;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(!out.is_empty(), "no \"## {title}\" section");
    out
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
    /// The unit's file name (`wg-exec@.service`).
    name: String,
    /// What it is made of, for messages: its file and drop-ins
    /// (`systemd/wg-exec@.service + systemd/non-root.conf`).
    title: String,
    kind: Kind,
    /// `[Unit] BindsTo=`, specifiers resolved.
    binds_to: Vec<String>,
    user: Option<String>,
    group: Option<String>,
    /// `RuntimeDirectory=`: names under /run.
    runtime_dirs: Vec<String>,
    preserve: bool,
    /// `StateDirectory=`: names under /var/lib.
    state_dirs: Vec<String>,
    /// `StateDirectoryMode=` (systemd's default: 0755), set at each start.
    state_mode: u32,
    private_tmp: bool,
    /// `UMask=` (systemd's default: 0022).
    umask: u32,
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
    /// `ExecStartPre=`, `ExecStartPost=`, `ExecStopPost=`: only `+` lines (run as root, outside
    /// the sandbox), optionally `-` (a failure is ignored).
    start_pre: Vec<String>,
    start_post: Vec<String>,
    stop_post: Vec<String>,
    /// `BindPaths=`: (source, target, whether a missing source is ignored).
    bind_paths: Vec<(String, String, bool)>,
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
    /// `Group=`, else the user's own group.
    fn gid(&self) -> u32 {
        match self.group.as_deref() {
            None => self.uid(),
            Some("root") | Some("0") => 0,
            Some(_) => UNIT_UID,
        }
    }
    fn interface(&self) -> bool {
        self.kind == Kind::Interface
    }
    /// The name of its instance `%i` (`wg-exec@.service` is `wg-exec@wg0.service`).
    fn instance_name(&self) -> String {
        let (prefix, suffix) = self
            .name
            .split_once("@.")
            .unwrap_or_else(|| panic!("{}: not a template unit", self.name));
        format!("{prefix}@{INSTANCE}.{suffix}")
    }
    /// The state directory its wg-exec uses: WG_EXEC_STATE_DIR from Environment=, else the
    /// default (/var/lib/wg-exec).
    fn state_dir(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "WG_EXEC_STATE_DIR")
            .map_or(STATE_DIR.to_string(), |(_, v)| v.clone())
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

/// A list of capabilities, added to `list` (systemd merges repeated lines).
fn add_capabilities(list: &mut Vec<String>, key: &str, v: &str) {
    for c in v.split_whitespace() {
        assert!(
            c.starts_with("CAP_"),
            "{key}={v}: the emulation knows only lists of CAP_ names (no ~ inversion)"
        );
        if !list.iter().any(|have| have == c) {
            list.push(c.to_string());
        }
    }
}

/// Directory names of `RuntimeDirectory=`/`StateDirectory=`, added to `list`: relative, no
/// `..`, no `:` (the symlink syntax is not emulated).
fn add_directories(list: &mut Vec<String>, key: &str, v: &str) {
    for d in v.split_whitespace() {
        assert!(
            !d.starts_with('/') && !d.split('/').any(|p| p == "..") && !d.contains(':'),
            "{key}={v}: the emulation knows plain relative names only"
        );
        list.push(d.to_string());
    }
}

/// A unit as systemd loads it: its file and then its drop-ins, each `(label, text)`, in
/// order. Later settings override earlier ones or extend them as systemd's do: `User=`,
/// `Group=`, `Type=`, ... replace; `AmbientCapabilities=`, `CapabilityBoundingSet=`,
/// `Environment=`, `RuntimeDirectory=`, `StateDirectory=` and the Exec lines accumulate, and an
/// empty assignment resets them.
fn parse_unit(name: &str, files: &[(String, String)]) -> Unit {
    let title = files
        .iter()
        .map(|(label, _)| label.as_str())
        .collect::<Vec<_>>()
        .join(" + ");
    let mut unit = Unit {
        name: name.to_string(),
        title: title.clone(),
        restart: "no".to_string(),
        restart_sec: Duration::from_millis(100),
        umask: 0o022,
        state_mode: 0o755,
        ..Unit::default()
    };
    let mut unknown = Vec::new();
    let (mut kind, mut remain) = (None, None);
    for (label, text) in files {
        let mut section = "";
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            assert!(
                !line.ends_with('\\'),
                "{label}: {line}: the emulation does not know continuation lines"
            );
            if line.starts_with('[') {
                assert!(
                    ["[Unit]", "[Service]", "[Install]"].contains(&line),
                    "{label}: the emulation does not know the section {line}"
                );
                section = line;
                continue;
            }
            let (key, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{label}: unit line without '=': {line}"));
            let (key, v) = (key.trim(), v.trim());
            match section {
                "[Unit]" => {
                    if key == "BindsTo" {
                        if v.is_empty() {
                            unit.binds_to.clear();
                        }
                        unit.binds_to.extend(v.split_whitespace().map(specifiers));
                    } else if !UNIT_SECTION.contains(&key) {
                        unknown.push(format!("[Unit] {key}"));
                    }
                    continue;
                }
                "[Install]" => {
                    if !INSTALL_SECTION.contains(&key) {
                        unknown.push(format!("[Install] {key}"));
                    }
                    continue;
                }
                "[Service]" => {}
                _ => panic!("{label}: {line} before any section"),
            }
            match key {
                "Type" => {
                    kind = Some(match v {
                        // ExecStart runs to its end and ExecStop later, which is what this
                        // means with RemainAfterExit=yes.
                        "oneshot" => Kind::Interface,
                        // ExecStart is the main process, SIGTERM stops it.
                        "simple" => Kind::Service,
                        _ => panic!(
                            "Type={v}: the emulation knows Type=oneshot and Type=simple only"
                        ),
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
                "User" => unit.user = Some(v.to_string()).filter(|v| !v.is_empty()),
                "Group" => unit.group = Some(v.to_string()).filter(|v| !v.is_empty()),
                "RuntimeDirectory" if v.is_empty() => unit.runtime_dirs.clear(),
                "RuntimeDirectory" => add_directories(&mut unit.runtime_dirs, key, v),
                "RuntimeDirectoryPreserve" => {
                    unit.preserve = v == "restart" || systemd_bool(key, v);
                }
                "StateDirectory" if v.is_empty() => unit.state_dirs.clear(),
                "StateDirectory" => add_directories(&mut unit.state_dirs, key, v),
                "StateDirectoryMode" => {
                    unit.state_mode = u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .unwrap_or_else(|| panic!("{key}={v}: not an octal mode"));
                }
                "PrivateTmp" => unit.private_tmp = systemd_bool(key, v),
                "UMask" => {
                    unit.umask = u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o777)
                        .unwrap_or_else(|| panic!("{key}={v}: not an octal mode"));
                }
                "Environment" if v.is_empty() => unit.env.clear(),
                "Environment" => {
                    for word in v.split_whitespace() {
                        let word = word.trim_matches('"');
                        let (k, val) = word
                            .split_once('=')
                            .unwrap_or_else(|| panic!("Environment={v}: {word} has no '='"));
                        unit.env.retain(|(have, _)| have != k);
                        unit.env.push((k.to_string(), specifiers(val)));
                    }
                }
                "AmbientCapabilities" if v.is_empty() => unit.ambient.clear(),
                "AmbientCapabilities" => add_capabilities(&mut unit.ambient, key, v),
                // Empty: the bounding set becomes empty.
                "CapabilityBoundingSet" if v.is_empty() => unit.bounding = Some(Vec::new()),
                "CapabilityBoundingSet" => {
                    add_capabilities(unit.bounding.get_or_insert_with(Vec::new), key, v)
                }
                "ExecStartPre" | "ExecStartPost" | "ExecStopPost" => {
                    let lines = match key {
                        "ExecStartPre" => &mut unit.start_pre,
                        "ExecStartPost" => &mut unit.start_post,
                        _ => &mut unit.stop_post,
                    };
                    if v.is_empty() {
                        lines.clear();
                    } else {
                        lines.push(v.to_string());
                    }
                }
                "BindPaths" if v.is_empty() => unit.bind_paths.clear(),
                "BindPaths" => {
                    for entry in v.split_whitespace() {
                        let (optional, entry) = match entry.strip_prefix('-') {
                            Some(rest) => (true, rest),
                            None => (false, entry),
                        };
                        let mut parts = entry.split(':');
                        let source = specifiers(parts.next().unwrap_or_default());
                        let target = parts.next().map(specifiers).unwrap_or(source.clone());
                        assert!(
                            source.starts_with('/') && target.starts_with('/'),
                            "{key}={v}: absolute paths"
                        );
                        unit.bind_paths.push((source, target, optional));
                    }
                }
                "ExecStart" | "ExecStop" | "ExecReload" => {
                    let lines = match key {
                        "ExecStart" => &mut unit.start,
                        "ExecStop" => &mut unit.stop,
                        _ => &mut unit.reload,
                    };
                    if v.is_empty() {
                        lines.clear();
                    } else {
                        lines.push(v.to_string());
                    }
                }
                // Enforced by the systemd VM test, not here (see HARDENING).
                hardening if HARDENING.contains(&hardening) => {}
                other => unknown.push(format!("[Service] {other}")),
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "{title}: the emulation in tests/readme.rs does not know {unknown:?}; teach it (a \
         setting that only hardens the unit goes into HARDENING)"
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

/// A file of systemd/ as `(label, text)`.
fn systemd_file(name: &str) -> (String, String) {
    let path = format!("{SYSTEMD_DIR}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    (format!("systemd/{name}"), text)
}

/// A shipped unit with shipped drop-ins (file names in systemd/) and then `more` drop-ins of
/// the test's own (`(label, text)`), in that order.
fn shipped_unit(name: &str, dropins: &[&str], more: &[(&str, &str)]) -> Unit {
    let mut files = vec![systemd_file(name)];
    files.extend(dropins.iter().map(|d| systemd_file(d)));
    files.extend(more.iter().map(|(l, t)| (l.to_string(), t.to_string())));
    parse_unit(name, &files)
}

/// The interface unit as shipped (root).
fn root_unit() -> Unit {
    let unit = shipped_unit(INTERFACE_UNIT, &[], &[]);
    assert!(
        unit.interface() && unit.root(),
        "{}: not a root interface unit (Type=oneshot, no User=)",
        unit.title
    );
    unit
}

/// The interface unit with the non-root drop-in, and `more` drop-ins of the test's own.
fn non_root_unit(more: &[(&str, &str)]) -> Unit {
    let unit = shipped_unit(INTERFACE_UNIT, &[NON_ROOT_DROPIN], more);
    assert!(
        unit.interface() && !unit.root(),
        "{}: not a non-root interface unit",
        unit.title
    );
    unit
}

/// The refresh unit: Type=simple, ExecStart `wg-exec refresh %i`.
fn refresh_unit() -> Unit {
    refresh_unit_with(&[])
}

/// The refresh unit with shipped drop-ins.
fn refresh_unit_with(dropins: &[&str]) -> Unit {
    let unit = shipped_unit(REFRESH_UNIT, dropins, &[]);
    assert_eq!(unit.kind, Kind::Service, "{}: not Type=simple", unit.title);
    assert_eq!(
        exec_argv(&unit.start[0]).get(1).map(String::as_str),
        Some("refresh"),
        "{}: its ExecStart does not run `wg-exec refresh %i`",
        unit.title
    );
    unit
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

/// An Exec line as argv: no prefixes, no quoting (the shipped units' lines have neither).
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

/// A root line of ExecStartPre=/ExecStartPost=/ExecStopPost= (`+`, full privileges, outside the
/// unit's sandbox; `-`: its failure is ignored): (whether failure is ignored, the shell command).
fn root_line(line: &str) -> (bool, String) {
    let mut rest = line;
    let (mut ignore, mut full) = (false, false);
    while let Some(c) = rest.chars().next().filter(|c| matches!(c, '-' | '+')) {
        ignore |= c == '-';
        full |= c == '+';
        rest = &rest[1..];
    }
    assert!(
        full,
        "{line}: the emulation runs only `+` lines before or after the main ones"
    );
    // The machine's file system, which such a line reaches through /proc/1/root (it sees the
    // unit's mounts too), is the sandbox's own here.
    let argv: Vec<String> = exec_argv(rest)
        .iter()
        .map(|a| match a.strip_prefix("/proc/1/root/") {
            Some(path) => q(&format!("/{path}")),
            None => q(a),
        })
        .collect();
    (ignore, argv.join(" "))
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
        for sub in [
            "etc-upper",
            "etc-work",
            "etc-wg-exec",
            "var-lib-upper",
            "var-lib-work",
        ] {
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
             mount -t overlay wg-exec-readme -o lowerdir=/var/lib,upperdir={d}/var-lib-upper,workdir={d}/var-lib-work /var/lib
             mount -t tmpfs -o mode=0755 wg-exec-readme /run
             mkdir -m 0755 /run/netns
             mount -t tmpfs -o mode=0755 wg-exec-readme /dev/net
             mknod -m 0666 /dev/net/tun c 10 200"
        ));
        // wg-exec's default state directory, private from the start (also for wg-exec run
        // without a unit), owned by root as wg-exec would create it.
        let default = STATE_DIR
            .strip_prefix("/var/lib/")
            .expect("the default state directory is under /var/lib");
        sb.private_state(default);
        sb
    }

    /// Where the private /var/lib/NAME (a StateDirectory=) is on the machine.
    fn state_path(&self, name: &str) -> PathBuf {
        self.path("var-lib").join(name)
    }

    /// /var/lib/NAME inside: a directory of the sandbox's own bound there (0755 root, made
    /// once).
    fn private_state(&self, name: &str) {
        let src = self.state_path(name);
        std::fs::create_dir_all(&src).unwrap();
        self.must(&format!(
            "[ /var/lib/{name} -ef {0} ] || {{ mkdir -p /var/lib/{name} && \
             mount --bind {0} /var/lib/{name}; }}",
            src.display()
        ));
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

    /// /etc/wg-exec as the README and non-root.conf say the package makes it for a non-root
    /// unit: owned by root and the unit's group, the directory 0750, its files readable by the
    /// group (0640), its subdirectories (the key directory) writable by it (0770) for
    /// generate_private_key_file. As it is for a root unit.
    fn etc_for(&self, unit: &Unit) {
        if unit.root() {
            return;
        }
        must(&format!(
            "chown -R 0:{gid} {d} && chmod 0750 {d} && \
             find {d} -mindepth 1 -type d -exec chmod 0770 {{}} + && \
             find {d} -type f -exec chmod 0640 {{}} +",
            gid = unit.gid(),
            d = self.path("etc-wg-exec").display()
        ));
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
    // There is no systemd here: this carries out the [Service] settings of a shipped unit that
    // wg-exec's work depends on, the way systemd does (Type=oneshot with RemainAfterExit=yes,
    // Type=simple, Restart=, RestartSec=, User=, Group=, StateDirectory=, RuntimeDirectory=,
    // RuntimeDirectoryPreserve=, PrivateTmp=, UMask=, Environment=, AmbientCapabilities=,
    // CapabilityBoundingSet=, ExecStart=, ExecReload=, ExecStop=, %i). The hardening settings
    // (HARDENING) are not carried out: booting a real systemd with these units is the systemd
    // VM test's job.

    /// Installs a unit's program: the program of its Exec lines resolves to the test's binary
    /// (inside only: an overlay on its directory, made once for all units, so that the rest of
    /// the directory stays as it is; the binary bound on the program's path).
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
            let layer = self.path(&format!("overlay{}", dir.replace('/', "-")));
            for sub in ["upper", "work"] {
                std::fs::create_dir_all(layer.join(sub)).unwrap();
            }
            let layer = layer.display();
            self.must(&format!(
                "grep -q '^wg-exec-readme {dir} overlay ' /proc/self/mounts || \
                 mount -t overlay wg-exec-readme \
                   -o lowerdir={dir},upperdir={layer}/upper,workdir={layer}/work {dir}"
            ));
            self.must(&format!(
                "[ {program} -ef {0} ] || {{ touch {program} && mount --bind {0} {program}; }}",
                wg_exec_bin()
            ));
        }
    }

    /// Where the private /tmp and /var/tmp of a unit with PrivateTmp=yes are on the machine.
    fn private_tmp(&self, unit: &Unit) -> PathBuf {
        self.path("private-tmp").join(unit.instance_name())
    }

    /// What systemd does when a unit starts, before its ExecStart: its RuntimeDirectory= under
    /// /run and its StateDirectory= under /var/lib (private, see `private_state`) made if
    /// missing (0755) and owned by the unit's user and group (if the top is not, the whole
    /// tree is chowned, as systemd does: with a shortcut when the top is right), a
    /// StateDirectory= given its StateDirectoryMode= at each start, the directories of its
    /// PrivateTmp=.
    fn unit_starting(&self, unit: &Unit) {
        self.root_lines(unit, "ExecStartPre", &unit.start_pre);
        let (uid, gid) = (unit.uid(), unit.gid());
        let mut dirs: Vec<String> = unit
            .runtime_dirs
            .iter()
            .map(|d| format!("/run/{d}"))
            .collect();
        for d in &unit.state_dirs {
            self.private_state(d);
            dirs.push(format!("/var/lib/{d}"));
        }
        for d in dirs {
            self.must(&format!(
                "mkdir -p -m 0755 {d} && \
                 {{ [ \"$(stat -c %u:%g {d})\" = {uid}:{gid} ] || chown -R {uid}:{gid} {d}; }}"
            ));
        }
        for d in &unit.state_dirs {
            self.must(&format!("chmod {:o} /var/lib/{d}", unit.state_mode));
        }
        if unit.private_tmp {
            for d in ["tmp", "var-tmp"] {
                let p = self.private_tmp(unit).join(d);
                std::fs::create_dir_all(&p).unwrap();
                std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o1777))
                    .unwrap();
            }
        }
    }

    /// The `+` lines of ExecStartPre=, ExecStartPost= or ExecStopPost=: as root, outside the
    /// unit's sandbox (in the test's mount namespace).
    fn root_lines(&self, unit: &Unit, which: &str, lines: &[String]) {
        for line in lines {
            let (ignore, cmd) = root_line(line);
            let out = self.sh(&cmd);
            assert!(
                ignore || out.status.success(),
                "{}: {which}={line} failed ({}): {}",
                unit.title,
                out.status,
                text(&out.stderr)
            );
        }
    }

    /// What systemd runs after a successful ExecStart: ExecStartPost=.
    fn unit_started(&self, unit: &Unit) {
        self.root_lines(unit, "ExecStartPost", &unit.start_post);
    }

    /// The shell command (for `sh`) that runs one Exec line of a unit as systemd runs it: a
    /// mount namespace of the unit's own (its PrivateTmp=), its UMask=, a clean environment
    /// (PATH, RUNTIME_DIRECTORY, STATE_DIRECTORY, Environment=), the unit's user, group and
    /// capabilities (ambient and bounding set), stdin from /dev/null. It runs inside network namespace `ns` (entered as root first, as
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
        if !unit.state_dirs.is_empty() {
            let dirs: Vec<String> = unit
                .state_dirs
                .iter()
                .map(|d| format!("/var/lib/{d}"))
                .collect();
            env.push(format!("STATE_DIRECTORY={}", dirs.join(":")));
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
        if unit.uid() != 0 || unit.gid() != 0 {
            setpriv.push(format!(
                "--reuid={} --regid={} --clear-groups",
                unit.uid(),
                unit.gid()
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
            let dir = self.private_tmp(unit);
            format!(
                "mount --bind {} /tmp && mount --bind {} /var/tmp && ",
                dir.join("tmp").display(),
                dir.join("var-tmp").display()
            )
        } else {
            String::new()
        };
        let mut binds = String::new();
        for (source, target, optional) in &unit.bind_paths {
            let bind = format!("mkdir -p {0} && mount --bind {1} {0}", q(target), q(source));
            binds.push_str(&match optional {
                true => format!("{{ [ ! -e {} ] || {{ {bind}; }}; }} && ", q(source)),
                false => format!("{bind} && "),
            });
        }
        let timeout = limit.map_or(String::new(), |s| format!("timeout -k 5 {s} "));
        let inner = format!(
            "umask {:04o} && {private_tmp}{binds}exec {timeout}ip netns exec {ns} env -i {} {setpriv} {} \
             </dev/null",
            unit.umask,
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

    /// The start of a Type=simple unit (`unit_starting`, then its ExecStart, not waited for):
    /// its main process, with stdout and stderr (systemd's journal) to the file `log` in the
    /// sandbox's directory.
    fn spawn_unit(&self, unit: &Unit, ns: &str, extra_env: &[(&str, &str)], log: &str) -> Service {
        assert_eq!(unit.kind, Kind::Service, "{}: not Type=simple", unit.title);
        self.unit_starting(unit);
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

    /// systemd's stop: after ExecStop, ExecStopPost=; a RuntimeDirectory= goes unless
    /// preserved; a StateDirectory= stays.
    fn unit_stopped(&self, unit: &Unit) {
        self.root_lines(unit, "ExecStopPost", &unit.stop_post);
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

    /// An interface unit's start: systemd's part (`unit_starting`), then its ExecStart lines.
    fn start(&self, unit: &Unit) {
        self.sb.unit_starting(unit);
        self.exec(unit, "ExecStart", &unit.start);
        self.sb.unit_started(unit);
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

    w.start(unit);
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

/// The README: a configuration that names namespaces needs CAP_SYS_ADMIN added to the
/// non-root unit. The example configuration through that unit, with it added.
#[test]
fn readme_non_root_unit_with_cap_sys_admin_runs_the_example() {
    if !real_environment("readme_non_root_unit_with_cap_sys_admin_runs_the_example") {
        return;
    }
    let ex = example(&readme());
    let unit = non_root_unit_for_namespaces(true);
    let what = &unit.title;
    let w = ExampleWorld::new(&ex);
    let sb = &w.sb;
    sb.install_unit(&unit);
    sb.etc_for(&unit);
    let before = sb.snapshots(&w.spaces());
    // The test's addition: a failed lookup fails at once instead of being retried.
    let env = [("WG_ENDPOINT_RESOLUTION_RETRIES", "0")];
    sb.unit_starting(&unit);
    for line in &unit.start {
        let out = sb.exec_unit(&unit, HOST, line, &env);
        assert!(
            out.status.success(),
            "{what}: ExecStart={line} failed ({}): {}",
            out.status,
            text(&out.stderr)
        );
    }
    sb.unit_started(&unit);
    w.check_up(UNIT_UID);
    assert!(
        sb.entries(&unit.state_dir()).contains("wg0.ron"),
        "{what}: the journal in {} while up",
        unit.state_dir()
    );
    for line in &unit.stop {
        let out = sb.exec_unit(&unit, HOST, line, &env);
        assert!(
            out.status.success(),
            "{what}: ExecStop={line} failed ({}): {}",
            out.status,
            text(&out.stderr)
        );
    }
    sb.unit_stopped(&unit);
    w.check_no_trace(&before, &unit.state_dir());
}

/// The same without CAP_SYS_ADMIN: exit 2 naming it, nothing changed.
#[test]
fn readme_non_root_unit_without_cap_sys_admin_refuses_the_example() {
    if !real_environment("readme_non_root_unit_without_cap_sys_admin_refuses_the_example") {
        return;
    }
    let ex = example(&readme());
    let unit = non_root_unit_for_namespaces(false);
    let what = &unit.title;
    let w = ExampleWorld::new(&ex);
    let sb = &w.sb;
    sb.install_unit(&unit);
    sb.etc_for(&unit);
    let before = sb.snapshots(&w.spaces());
    let files = sb.config_files();
    let env = [("WG_ENDPOINT_RESOLUTION_RETRIES", "0")];
    sb.unit_starting(&unit);
    let out = sb.exec_unit(&unit, HOST, &unit.start[0], &env);
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
    w.start(interface);
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
    w.start(interface);
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
