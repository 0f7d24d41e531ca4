//! The unit emulator's reading of systemd units: the shipped unit files of systemd/ and their
//! drop-ins, parsed into the [Service] settings the emulation carries out (`Unit`); settings
//! that only harden a unit are accepted and left to the systemd VM test (HARDENING); anything
//! else is refused, loudly. `emulate` runs them in a `Sandbox`.

use super::guard::STATE_DIR;
use super::shell::q;
use std::process::ExitStatus;
use std::time::Duration;

/// The instance (`%i`) and the interface name; the example is /etc/wg-exec/wg0.ron.
pub const INSTANCE: &str = "wg0";
/// The uid and gid a non-root unit's `User=` and `Group=` become (the package's system user
/// and group `wg-exec`, which this machine need not have).
pub const UNIT_UID: u32 = 65534;
/// systemd's PATH for system services.
pub const SYSTEMD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the shipped units are.
pub const SYSTEMD_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd");
/// The interface unit (as root).
pub const INTERFACE_UNIT: &str = "wg-exec@.service";
/// The drop-in for INTERFACE_UNIT that makes it the non-root unit.
pub const NON_ROOT_DROPIN: &str = "non-root.conf";
pub const NON_ROOT_REFRESH_DROPIN: &str = "non-root-refresh.conf";
/// The refresh unit (Type=simple, `wg-exec refresh %i`).
pub const REFRESH_UNIT: &str = "wg-exec-refresh@.service";

/// [Service] settings that only harden a unit: accepted and NOT emulated. They take away what
/// wg-exec does not need (file system writes, devices, address families, system calls,
/// namespaces, ...), which only a real systemd can enforce faithfully; the systemd VM test
/// (`scripts/vm-test --systemd`, which boots real systemd with the shipped units) runs the
/// units with them. What wg-exec's work depends on is emulated instead: User=, Group=,
/// AmbientCapabilities=, CapabilityBoundingSet=, StateDirectory=, RuntimeDirectory=,
/// PrivateTmp=, UMask=, Environment=. A setting in neither list is refused.
pub const HARDENING: &[&str] = &[
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
pub const UNIT_SECTION: &[&str] = &[
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
pub const INSTALL_SECTION: &[&str] = &["WantedBy", "RequiredBy", "Alias", "Also"];

/// What a unit is to the emulation, from its `Type=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
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
pub struct Unit {
    /// The unit's file name (`wg-exec@.service`).
    pub name: String,
    /// What it is made of, for messages: its file and drop-ins
    /// (`systemd/wg-exec@.service + systemd/non-root.conf`).
    pub title: String,
    pub kind: Kind,
    /// `[Unit] BindsTo=`, specifiers resolved.
    pub binds_to: Vec<String>,
    pub user: Option<String>,
    pub group: Option<String>,
    /// `RuntimeDirectory=`: names under /run.
    pub runtime_dirs: Vec<String>,
    pub preserve: bool,
    /// `StateDirectory=`: names under /var/lib.
    pub state_dirs: Vec<String>,
    /// `StateDirectoryMode=` (systemd's default: 0755), set at each start.
    pub state_mode: u32,
    pub private_tmp: bool,
    /// `UMask=` (systemd's default: 0022).
    pub umask: u32,
    pub env: Vec<(String, String)>,
    pub ambient: Vec<String>,
    pub bounding: Option<Vec<String>>,
    /// `Restart=` (systemd's default: no).
    pub restart: String,
    /// `RestartSec=` (systemd's default: 100 ms).
    pub restart_sec: Duration,
    pub start: Vec<String>,
    pub reload: Vec<String>,
    pub stop: Vec<String>,
    /// `ExecStartPre=`, `ExecStartPost=`, `ExecStopPost=`: only `+` lines (run as root, outside
    /// the sandbox), optionally `-` (a failure is ignored).
    pub start_pre: Vec<String>,
    pub start_post: Vec<String>,
    pub stop_post: Vec<String>,
    /// `BindPaths=`: (source, target, whether a missing source is ignored).
    pub bind_paths: Vec<(String, String, bool)>,
}

impl Unit {
    pub fn root(&self) -> bool {
        matches!(self.user.as_deref(), None | Some("root") | Some("0"))
    }
    pub fn uid(&self) -> u32 {
        if self.root() {
            0
        } else {
            UNIT_UID
        }
    }
    /// `Group=`, else the user's own group.
    pub fn gid(&self) -> u32 {
        match self.group.as_deref() {
            None => self.uid(),
            Some("root") | Some("0") => 0,
            Some(_) => UNIT_UID,
        }
    }
    pub fn interface(&self) -> bool {
        self.kind == Kind::Interface
    }
    /// The name of its instance `%i` (`wg-exec@.service` is `wg-exec@wg0.service`).
    pub fn instance_name(&self) -> String {
        let (prefix, suffix) = self
            .name
            .split_once("@.")
            .unwrap_or_else(|| panic!("{}: not a template unit", self.name));
        format!("{prefix}@{INSTANCE}.{suffix}")
    }
    /// The state directory its wg-exec uses: WG_EXEC_STATE_DIR from Environment=, else the
    /// default (/var/lib/wg-exec).
    pub fn state_dir(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "WG_EXEC_STATE_DIR")
            .map_or(STATE_DIR.to_string(), |(_, v)| v.clone())
    }
    /// Whether systemd restarts this service after its main process ended by itself with
    /// `status` (systemd.service(5), the table under Restart=; SIGHUP, SIGINT, SIGTERM and
    /// SIGPIPE are clean signals). A stop that systemd makes (systemctl stop, BindsTo=) never
    /// restarts.
    pub fn restarts_after(&self, status: ExitStatus) -> bool {
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

pub fn systemd_bool(key: &str, v: &str) -> bool {
    match v {
        "yes" | "true" | "on" | "1" => true,
        "no" | "false" | "off" | "0" => false,
        _ => panic!("{key}={v}: not a boolean"),
    }
}

/// A systemd time span as `RestartSec=` takes it: seconds without a unit, or numbers with
/// `ms`, `s`, `min` (e.g. `5`, `500ms`, `1min 30s`).
pub fn systemd_timespan(key: &str, v: &str) -> Duration {
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
pub fn add_capabilities(list: &mut Vec<String>, key: &str, v: &str) {
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
pub fn add_directories(list: &mut Vec<String>, key: &str, v: &str) {
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
pub fn parse_unit(name: &str, files: &[(String, String)]) -> Unit {
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
pub fn systemd_file(name: &str) -> (String, String) {
    let path = format!("{SYSTEMD_DIR}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    (format!("systemd/{name}"), text)
}

/// A shipped unit with shipped drop-ins (file names in systemd/) and then `more` drop-ins of
/// the test's own (`(label, text)`), in that order.
pub fn shipped_unit(name: &str, dropins: &[&str], more: &[(&str, &str)]) -> Unit {
    let mut files = vec![systemd_file(name)];
    files.extend(dropins.iter().map(|d| systemd_file(d)));
    files.extend(more.iter().map(|(l, t)| (l.to_string(), t.to_string())));
    parse_unit(name, &files)
}

/// The interface unit as shipped (root).
pub fn root_unit() -> Unit {
    let unit = shipped_unit(INTERFACE_UNIT, &[], &[]);
    assert!(
        unit.interface() && unit.root(),
        "{}: not a root interface unit (Type=oneshot, no User=)",
        unit.title
    );
    unit
}

/// The interface unit with the non-root drop-in, and `more` drop-ins of the test's own.
pub fn non_root_unit(more: &[(&str, &str)]) -> Unit {
    let unit = shipped_unit(INTERFACE_UNIT, &[NON_ROOT_DROPIN], more);
    assert!(
        unit.interface() && !unit.root(),
        "{}: not a non-root interface unit",
        unit.title
    );
    unit
}

/// The refresh unit: Type=simple, ExecStart `wg-exec refresh %i`.
pub fn refresh_unit() -> Unit {
    refresh_unit_with(&[])
}

/// The refresh unit with shipped drop-ins.
pub fn refresh_unit_with(dropins: &[&str]) -> Unit {
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
pub fn specifiers(v: &str) -> String {
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
pub fn exec_argv(line: &str) -> Vec<String> {
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
pub fn root_line(line: &str) -> (bool, String) {
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
