//! Running wg-exec: as root (optionally inside a namespace) and as a non-root unit user with
//! ambient capabilities, the way a systemd unit with `User=` runs it.

use super::netns::Netns;
use super::shell::{must, sh, text};
use std::path::Path;
use std::process::Output;

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

/// `wg-exec VERB IFACE --config CFG` as root inside namespace `ns`, with environment `env` (""
/// or "K=V ...") and the default state directory.
pub fn wg_exec_in(ns: &Netns, env: &str, verb: &str, iface: &str, cfg: &Path) -> Output {
    wg_exec(
        &format!("ip netns exec {} env {env}", ns.name),
        &format!("{verb} {iface} --config {}", cfg.display()),
    )
}

/// Runs `wg-exec ARGS` (optionally prefixed, e.g. by `ip netns exec NS`) and returns the output.
pub fn wg_exec(prefix: &str, args: &str) -> Output {
    sh(&format!("{prefix} {} {args}", wg_exec_bin()))
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
