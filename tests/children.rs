//! What wg-exec's children hold: the userspace daemon (which parses packets from the Internet)
//! gets CAP_NET_ADMIN and nothing else, as root and as a non-root unit user with ambient
//! capabilities, with and without hooks; hooks get what the unit granted wg-exec. Read from
//! /proc/PID/status of the running processes, in the plain shape (no namespace options).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::conf::Conf;
use support::keys::Keys;
use support::*;

const NET_ADMIN: u64 = 1 << 12;
const SYS_MODULE: u64 = 1 << 16;

/// The Cap* lines of /proc/PID/status, as masks.
fn caps_of(pid: &str) -> BTreeMap<String, u64> {
    parse_caps(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap())
}

/// The Cap* lines of a /proc/PID/status text, as masks.
fn parse_caps(status: &str) -> BTreeMap<String, u64> {
    status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let v = u64::from_str_radix(v.trim(), 16).ok()?;
            k.starts_with("Cap").then(|| (k.to_string(), v))
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Root,
    /// uid 65534 with ambient CAP_NET_ADMIN and CAP_SYS_MODULE (systemd/non-root.conf).
    UnitUser,
}

fn daemon_caps(who: Who, hook: bool) {
    let test = format!("children {who:?} hook={hook}");
    if !real_environment(&test) {
        return;
    }
    let h = Host::new("c");
    let (ns, keys, name) = (&h.ns, &h.keys, &h.ia);
    let (key, _) = keys.private("a");
    let hook_out = keys.dir.path().join("hook-status");
    let mut conf = Conf::new(&["192.0.2.1/24"], &key).with("listen_port: 51820");
    if hook {
        // The hook copies its own shell's status: what the administrator's code runs with.
        // Also: its own command line (the text must not be there: every user's ps shows it)
        // and the owner of wg-exec's /proc entry (root when wg-exec is not dumpable).
        conf = conf.with(format!(
            "post_setup: [\"cat /proc/$$/status > {0}\", \": hook-marker; cat /proc/$$/cmdline > {0}.cmdline; stat -c %u /proc/$PPID/environ > {0}.parent\"]",
            hook_out.display()
        ));
    }
    let config = keys.write("c.ron", &conf.render());
    let runner = match who {
        Who::Root => support::Who::Root,
        Who::UnitUser => support::Who::UnitUser(&["net_admin", "sys_module"]),
    };
    let wg = Wg::on(runner, &h, &config).verbose();
    let run = |op: &str| wg.run(op);
    ok(run("up"));
    let pids = must(&format!("pgrep -f -x 'wireguard-go {name}'"));
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert!(!pids.is_empty(), "{test}: no wireguard-go serves {name}");
    for pid in &pids {
        let caps = caps_of(pid);
        for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
            assert_eq!(
                caps[set], NET_ADMIN,
                "{test}: wireguard-go (pid {pid}) {set} is {:#x}, not CAP_NET_ADMIN alone: {caps:x?}",
                caps[set]
            );
        }
        if who == Who::Root {
            // Root gets its bounding set back at exec: it must be CAP_NET_ADMIN alone too.
            assert_eq!(caps["CapBnd"], NET_ADMIN, "{test}: pid {pid}: {caps:x?}");
        }
    }
    if hook {
        let hook_caps = parse_caps(&std::fs::read_to_string(&hook_out).unwrap());
        let granted = match who {
            // What this test (root) has: what a root unit grants.
            Who::Root => caps_of("self")["CapEff"],
            Who::UnitUser => NET_ADMIN | SYS_MODULE,
        };
        assert_eq!(
            hook_caps["CapEff"], granted,
            "{test}: the hook runs with what the unit grants: {hook_caps:x?}"
        );
        let cmdline = std::fs::read(hook_out.with_extension("cmdline")).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(
            !cmdline.contains("hook-marker"),
            "{test}: the hook's text is in its argv: {cmdline}"
        );
        assert!(cmdline.contains("/dev/fd/3"), "{test}: {cmdline}");
        // wg-exec is not dumpable (PR_SET_DUMPABLE 0): its /proc entries are root's, out of
        // reach of the unit user's other processes (the daemon).
        let parent_owner = std::fs::read_to_string(hook_out.with_extension("parent")).unwrap();
        assert_eq!(
            parent_owner.trim(),
            "0",
            "{test}: /proc/<wg-exec>/environ owner"
        );
    }
    if who == Who::UnitUser {
        // Root reads the unit user's device (as an administrator runs `wg-exec status`): the
        // daemon's socket is the one the journal recorded, though root, its capabilities
        // dropped, cannot look into that user's processes.
        let status = sh(&format!(
            "ip netns exec {} unshare --mount sh -c 'mount --make-rprivate / && mount --bind {} /run/wireguard && \
             env WG_EXEC_STATE_DIR={} {} status {name} --config {}'",
            ns.name,
            wg.sockets.display(),
            wg.state.display(),
            wg_exec_bin(),
            config.display()
        ));
        assert!(
            status.status.success(),
            "{test}: root's status: {}",
            text(&status.stderr)
        );
    }
    ok(run("down"));
    assert!(!ns.has_link(name), "{test}: {name} is left");
    assert!(
        !wg.sockets.join(format!("{name}.sock")).exists() && !socket_exists(name),
        "{test}: a socket is left"
    );
}

#[test]
fn daemon_holds_net_admin_only_as_root() {
    daemon_caps(Who::Root, false);
}

#[test]
fn daemon_holds_net_admin_only_as_root_with_a_hook() {
    daemon_caps(Who::Root, true);
}

#[test]
fn daemon_holds_net_admin_only_as_the_unit_user() {
    daemon_caps(Who::UnitUser, false);
}

#[test]
fn daemon_holds_net_admin_only_as_the_unit_user_with_a_hook() {
    daemon_caps(Who::UnitUser, true);
}

/// A userspace program that creates the link and a socket file it never serves: `up` fails
/// (exit 1, "rolled back") and nothing is left: no link, no socket file, no process of its.
/// `foreground`: it never exits either (wireguard-go forks and exits).
fn hostile_program_leaves_nothing(foreground: bool) {
    let test = format!("hostile userspace program, foreground={foreground}");
    if !real_environment(&test) {
        return;
    }
    let h = Host::new("h");
    let (ns, keys, name) = (&h.ns, &h.keys, &h.ia);
    let (key, _) = keys.private("a");
    let pid_file = keys.dir.path().join("pid");
    let last = match foreground {
        true => format!("echo $$ > {0}; exec sleep 1000", pid_file.display()),
        false => format!(
            "sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > {}",
            pid_file.display()
        ),
    };
    let config = stand_in(
        keys,
        &key,
        &format!(
            "ip tuntap add dev \"$1\" mode tun\nmkdir -p /var/run/wireguard\n\
             /usr/bin/python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' /var/run/wireguard/$1.sock\n{last}"
        ),
        "",
    );
    let state = keys.dir.path().join("state");
    let started = std::time::Instant::now();
    let out = sh(&format!(
        "ip netns exec {} env WG_EXEC_STATE_DIR={} {} up {name} --config {}",
        ns.name,
        state.display(),
        wg_exec_bin(),
        config.display()
    ));
    let log = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{test}: {log}");
    // The link add is the first step: "nothing had been changed yet" is its "rolled back".
    assert!(
        log.contains("nothing had been changed yet") || log.contains("rolled back"),
        "{test}: {log}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{test}: took {:?}",
        started.elapsed()
    );
    assert!(!ns.has_link(name), "{test}: link {name} left: {log}");
    assert!(!socket_exists(name), "{test}: socket file left: {log}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let pid = pid.trim();
    assert!(!running(pid), "{test}: its process {pid} still runs: {log}");
}

/// Writes a stand-in userspace program (`sh -e`, `body` after the shebang) and a configuration
/// with `fields` that starts it; returns the configuration's path.
fn stand_in(keys: &Keys, key: &Path, body: &str, fields: &str) -> PathBuf {
    let program = keys.write("stand-in", &format!("#!/bin/sh\nset -e\n{body}\n"));
    must(&format!("chmod 0755 {}", program.display()));
    keys.write(
        "c.ron",
        &Conf::new(&["192.0.2.1/24"], key)
            .with(format!(
                "{fields}backend: Userspace, userspace_implementation: \"{}\"",
                program.display()
            ))
            .render(),
    )
}

/// Whether process `pid` is there and not a zombie.
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
        .unwrap_or(false)
}

#[test]
fn a_userspace_program_that_never_serves_leaves_nothing() {
    hostile_program_leaves_nothing(false);
}

#[test]
fn a_userspace_program_that_never_returns_leaves_nothing() {
    hostile_program_leaves_nothing(true);
}

/// boringtun-cli's shape (daemonize forks twice): the program's middle process forks the
/// server and exits on its own time, after the program itself has exited and the socket
/// serves. Here the middle lingers until the test has looked, so wg-exec looks while the
/// server is its grandchild:
/// `up` must know it as the daemon it started (CI once saw boringtun-cli's middle process
/// still alive, and `up` refused the socket as served by a stranger), and `down` must end it.
#[test]
fn a_daemon_forked_by_a_lingering_middle_process_is_known_and_ended() {
    let test = "daemon forked by a middle process";
    if !real_environment(test) {
        return;
    }
    let h = Host::new("m");
    let (ns, keys, name) = (&h.ns, &h.keys, &h.ia);
    let (key, public) = keys.private("a");
    let (server_pid, middle_pid) = (
        keys.dir.path().join("server.pid"),
        keys.dir.path().join("middle.pid"),
    );
    // The middle process exits once this file is there (or after 60 s).
    let release = keys.dir.path().join("release");
    let wireguard_go = which("wireguard-go").unwrap();
    let config = stand_in(
        keys,
        &key,
        &format!(
            "( sh -c 'echo $PPID' > {middle}; {wg} -f \"$1\" </dev/null >/dev/null 2>&1 & echo $! > {server}; j=0; while [ ! -e {release} ] && [ $j -lt 6000 ]; do sleep 0.01; j=$((j+1)); done ) </dev/null >/dev/null 2>&1 &\n\
             i=0; while [ ! -S /var/run/wireguard/$1.sock ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done",
            wg = wireguard_go.display(),
            server = server_pid.display(),
            middle = middle_pid.display(),
            release = release.display()
        ),
        "listen_port: 51820, ",
    );
    let out = h.op("up", &config);
    let log = text(&out.stderr);
    assert!(out.status.success(), "{test}: up: {log}");
    let read = |f: &Path| std::fs::read_to_string(f).unwrap().trim().to_string();
    let (server, middle) = (read(&server_pid), read(&middle_pid));
    // The middle process is still there: the server was a grandchild when wg-exec looked.
    let parent = must(&format!("ps -o ppid= -p {server}"));
    assert_eq!(
        parent.trim(),
        middle,
        "{test}: the middle process has already exited"
    );
    std::fs::write(&release, "").unwrap();
    let dump = wg_dump_in(&ns.name, name, None);
    assert_eq!(
        (dump[0][1].as_str(), dump[0][2].as_str()),
        (public.as_str(), "51820"),
        "{test}: the device's public key and port"
    );
    let out = h.op("down", &config);
    let log = text(&out.stderr);
    assert!(out.status.success(), "{test}: down: {log}");
    assert!(!ns.has_link(name), "{test}: link {name} left: {log}");
    assert!(!socket_exists(name), "{test}: socket left: {log}");
    assert!(
        !running(&server),
        "{test}: the server {server} still runs: {log}"
    );
    h.assert_as_before(test);
}
