//! Test hosts for the integration tests: network namespaces joined by veth, created per test
//! with unique names and always removed (with every process in them), keys made by `wg`, and
//! the independent observers `ip -j` and `wg show dump`.
#![allow(dead_code)]

pub mod conf;
pub mod rich;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Whether the real environment is here: root, wireguard-go, wg, ip, ping. Under CI=true a
/// missing piece fails the test; elsewhere the test says loudly that it did not run.
pub fn real_environment(test: &str) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_string());
    }
    for tool in ["wireguard-go", "wg", "ip", "ping", "unshare", "nsenter"] {
        if which(tool).is_none() {
            missing.push(tool.to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{test}: cannot run without {}", missing.join(", "));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg} (CI=true: scripts/setup installs them)");
    }
    eprintln!("SKIPPED (not counted as passed): {msg}");
    false
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

/// A short unique suffix: pid and a counter.
pub fn unique() -> String {
    format!(
        "{}{}",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A unique interface name ("w" + up to 8 digits + a letter), at most 15 bytes.
pub fn iface(tag: &str) -> String {
    let name = format!("w{}{tag}", unique());
    assert!(name.len() <= 15, "{name}");
    name
}

pub fn sh(cmd: &str) -> Output {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run /bin/sh")
}

/// Runs a shell command that must succeed; returns its stdout.
pub fn must(cmd: &str) -> String {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace owned by a test; dropped = its processes killed, the namespace deleted.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("wgt-{}-{tag}", unique());
        must(&format!("ip netns add {name}"));
        // The test's own namespace: no duplicate address detection, so that addresses and
        // routes settle at once and snapshots compare.
        must(&format!(
            "ip netns exec {name} sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0"
        ));
        must(&format!("ip -n {name} link set lo up"));
        Netns { name }
    }

    pub fn ip(&self, args: &str) -> String {
        must(&format!("ip -n {} {args}", self.name))
    }

    pub fn exec(&self, cmd: &str) -> Output {
        sh(&format!("ip netns exec {} {cmd}", self.name))
    }

    /// `wg show IFACE dump` in this namespace, as lines of tab-separated fields.
    pub fn wg_dump(&self, iface: &str) -> Vec<Vec<String>> {
        must(&format!("ip netns exec {} wg show {iface} dump", self.name))
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    pub fn has_link(&self, iface: &str) -> bool {
        sh(&format!("ip -n {} link show dev {iface}", self.name))
            .status
            .success()
    }

    /// Pings until one answer arrives (the first handshake may be lost and retried after 5 s).
    pub fn ping(&self, addr: &str) -> bool {
        ping_in(&self.name, addr)
    }

    /// Everything a test may compare before and after: links, addresses, routes of all tables
    /// and rules, as `ip` prints them (JSON, with counters and timers left out).
    pub fn snapshot(&self) -> String {
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
            let text = self.ip(&format!("-j {what}"));
            s.push_str(&strip_volatile(&text));
            s.push('\n');
        }
        s
    }
}

/// Pings from namespace `ns` until one answer arrives, for at most 20 s.
pub fn ping_in(ns: &str, addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if sh(&format!("ip netns exec {ns} ping -c 1 -W 1 {addr}"))
            .status
            .success()
        {
            return true;
        }
    }
    false
}

/// Drops fields that change on their own (counters, link ids of peers).
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

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "ip netns pids {0} | xargs -r kill -9; sleep 0.05; ip netns del {0}",
            self.name
        ));
    }
}

/// Removes a userspace WireGuard's socket file and wg-exec's journal and records if a test left
/// them behind (after a failure or SIGKILL).
pub struct SocketGuard(pub String);

/// wg-exec's default state directory (journals, records of what was applied, locks).
pub const STATE_DIR: &str = "/var/lib/wg-exec";

/// wg-exec's journal of an interface (default state directory).
pub fn journal_path(iface: &str) -> String {
    format!("{STATE_DIR}/{iface}.ron")
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(journal_path(&self.0));
        for record in ["applied", "applied-next"] {
            for ext in ["json", "ron"] {
                let _ = std::fs::remove_file(format!("{STATE_DIR}/{}.{record}.{ext}", self.0));
            }
        }
        let path = format!("/var/run/wireguard/{}.sock", self.0);
        if Path::new(&path).exists() {
            let _ = sh(&format!("fuser -k -9 {path} 2>/dev/null; rm -f {path}"));
        }
    }
}

/// Two test hosts joined by a veth pair: 203.0.113.1/24 + 2001:db8:ffff::1/64 on `a`,
/// .2 / ::2 on `b`.
pub struct Pair {
    pub a: Netns,
    pub b: Netns,
}

impl Pair {
    pub fn new() -> Pair {
        let a = Netns::new("a");
        let b = Netns::new("b");
        let (va, vb) = (format!("v{}", unique()), format!("v{}", unique()));
        must(&format!(
            "ip -n {} link add {va} type veth peer name {vb} netns {}",
            a.name, b.name
        ));
        for (ns, dev, n) in [(&a, &va, 1), (&b, &vb, 2)] {
            ns.ip(&format!("address add 203.0.113.{n}/24 dev {dev}"));
            ns.ip(&format!(
                "address add 2001:db8:ffff::{n}/64 dev {dev} nodad"
            ));
            ns.ip(&format!("link set {dev} up"));
        }
        // Wait until IPv6 configured the link-local addresses and their routes.
        for (ns, dev) in [(&a, &va), (&b, &vb)] {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !ns
                .ip(&format!("-6 route show table local dev {dev}"))
                .contains("ff00::/8")
                || !ns
                    .ip(&format!("-6 route show dev {dev}"))
                    .contains("fe80::/64")
            {
                assert!(Instant::now() < deadline, "IPv6 on {dev} did not come up");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Pair { a, b }
    }
}

/// Keys made by `wg`, in a private directory.
pub struct Keys {
    pub dir: tempfile::TempDir,
}

impl Keys {
    /// In /var/tmp, so that a unit user's private /tmp (PrivateTmp=, see `as_unit_user`) does
    /// not hide it.
    pub fn new() -> Keys {
        let dir = tempfile::Builder::new()
            .prefix("wg-exec-test-")
            .tempdir_in("/var/tmp")
            .unwrap();
        Keys { dir }
    }

    /// Writes a private key file NAME.key (0600) and returns (path, public key).
    pub fn private(&self, name: &str) -> (PathBuf, String) {
        let path = self.dir.path().join(format!("{name}.key"));
        must(&format!("umask 077; wg genkey > {}", path.display()));
        let public = must(&format!("wg pubkey < {}", path.display()))
            .trim()
            .to_string();
        (path, public)
    }

    /// Writes a preshared key file NAME.psk (0600) and returns its path and text.
    pub fn psk(&self, name: &str) -> (PathBuf, String) {
        let path = self.dir.path().join(format!("{name}.psk"));
        must(&format!("umask 077; wg genpsk > {}", path.display()));
        let text = std::fs::read_to_string(&path).unwrap().trim().to_string();
        (path, text)
    }

    pub fn write(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    }
}

pub fn wg_exec_bin() -> &'static str {
    env!("CARGO_BIN_EXE_wg-exec")
}

/// A copy of the binary in `dir` (a test's own, in /var/tmp), where a unit user's private /tmp
/// (see `as_unit_user`) cannot hide it: the build may live under /tmp.
pub fn unit_bin(dir: &Path) -> String {
    let to = dir.join("wg-exec");
    if !to.exists() {
        std::fs::copy(wg_exec_bin(), &to).unwrap();
        must(&format!("chmod 0755 {}", to.display()));
    }
    to.display().to_string()
}

/// Runs `wg-exec ARGS` (optionally prefixed, e.g. by `ip netns exec NS`) and returns the output.
pub fn wg_exec(prefix: &str, args: &str) -> Output {
    sh(&format!("{prefix} {} {args}", wg_exec_bin()))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts success and returns stderr (where wg-exec logs).
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "wg-exec failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// The userspace processes serving an interface (by UAPI socket), for leak checks.
pub fn socket_exists(iface: &str) -> bool {
    Path::new(&format!("/var/run/wireguard/{iface}.sock")).exists()
}

pub fn wireguard_go_processes(iface: &str) -> usize {
    let out = sh(&format!("pgrep -f -x 'wireguard-go {iface}' | wc -l"));
    text(&out.stdout).trim().parse().unwrap_or(0)
}

/// The prefix of a shell command that runs the way a systemd unit with `User=` (uid 65534) and
/// `AmbientCapabilities=CAPS` runs it, on a machine managed by udev and systemd: in a private
/// mount namespace where /dev/net/tun is a 0666 node (as udev makes it, whatever this machine's
/// is), `sockets` (owned by the user, as `RuntimeDirectory=wireguard` makes it) is
/// /run/wireguard, and /tmp is private and empty (`PrivateTmp=yes`: boringtun-cli writes its
/// logs to /tmp/boringtun.out and .err). `inner` is a shell command line; `{user}` in it is replaced by the setpriv
/// prefix that becomes the user, so that it can stand after `ip netns exec NS`.
pub fn as_unit_user(caps: &[&str], sockets: &Path, inner: &str) -> String {
    let list: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
    let list = list.join(",");
    let user = format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all,{list} --ambient-caps=-all,{list}"
    );
    std::fs::create_dir_all("/run/wireguard").unwrap();
    format!(
        "unshare --mount sh -c 'mount --make-rprivate / && mount -t tmpfs -o mode=0755 wg-exec-test /dev/net && \
         mknod -m 0666 /dev/net/tun c 10 200 && mount --bind {} /run/wireguard && \
         mount -t tmpfs -o mode=1777 wg-exec-test /tmp && {}'",
        sockets.display(),
        inner.replace("{user}", &user)
    )
}

/// `wg show IFACE dump` in `ns`, with the UAPI sockets of a unit user's /run/wireguard.
pub fn wg_dump_in(ns: &str, iface: &str, sockets: Option<&Path>) -> Vec<Vec<String>> {
    let cmd = format!("ip netns exec {ns} wg show {iface} dump");
    let cmd = match sockets {
        None => cmd,
        Some(dir) => format!(
            "unshare --mount sh -c 'mount --make-rprivate / && mount --bind {} /run/wireguard && {cmd}'",
            dir.display()
        ),
    };
    must(&cmd)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// boringtun-cli as scripts/setup builds it; None (said loudly, or a failure under CI=true)
/// when it is missing.
pub fn boringtun(test: &str) -> Option<String> {
    let root = std::env::var("WG_EXEC_BORINGTUN_ROOT")
        .unwrap_or_else(|_| "/var/cache/wg-exec-boringtun".into());
    let program = format!("{root}/bin/boringtun-cli");
    if Path::new(&program).is_file() {
        return Some(program);
    }
    let msg = format!("{test}: {program} is missing (scripts/setup builds it)");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED (not counted as passed): {msg}");
    None
}

/// A network namespace that plays PID 1's ("init") for a test: wg-exec runs in a fresh PID
/// namespace whose PID 1 (a sleep) lives in this namespace, entered with `prefix()`. The
/// machine's own namespace is never touched.
pub struct FakeInit {
    pub ns: Netns,
    holder: std::process::Child,
    pid1: String,
}

impl FakeInit {
    pub fn new() -> FakeInit {
        let ns = Netns::new("init");
        let holder = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "unshare",
                "--pid",
                "--fork",
                "--mount-proc",
            ])
            .args(["sleep", "1000000"])
            .spawn()
            .unwrap();
        let mut pid1 = String::new();
        for _ in 0..500 {
            pid1 = text(&sh(&format!("pgrep -P {}", holder.id())).stdout)
                .trim()
                .to_string();
            if !pid1.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!pid1.is_empty(), "the PID namespace's init started");
        let init = FakeInit { ns, holder, pid1 };
        // Inside, /proc/1/ns/net is the namespace playing init.
        let inside = must(&format!("{} readlink /proc/1/ns/net", init.prefix()));
        let expected = must(&format!(
            "ip netns exec {} readlink /proc/self/ns/net",
            init.ns.name
        ));
        assert_eq!(inside, expected);
        init
    }

    /// Runs a command inside the fake init's PID, mount and network namespaces.
    pub fn prefix(&self) -> String {
        format!("nsenter --target {} --pid --mount --net", self.pid1)
    }
}

impl Drop for FakeInit {
    fn drop(&mut self) {
        let _ = sh(&format!("pkill -9 -P {}", self.holder.id()));
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
