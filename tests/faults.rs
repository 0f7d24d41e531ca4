//! Nothing half done, proven on the real userspace backend in namespaces: faults injected at
//! every step of up and down, SIGKILL at every step of up, SIGTERM in the middle of a large up,
//! two ups racing, configurations changed between up and down, no secret anywhere, and
//! capabilities. Needs the `fault-injection` feature (WG_EXEC_FAULT, WG_EXEC_PAUSE) and root.

mod support;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use support::*;

const UP_STEPS: &[&str] = &[
    "generate key file",
    "pre_setup",
    "link add",
    "netns move",
    "mtu",
    "addresses",
    "key",
    "up",
    "post_setup",
    "peer set",
    "route",
];

/// A host in `a` whose interface moves to `t`, with everything that leaves traces.
struct Setup {
    a: Netns,
    t: Netns,
    keys: Keys,
    ia: String,
    cfg: PathBuf,
    key_file: PathBuf,
    before: (String, String),
    _guard: SocketGuard,
}

impl Setup {
    fn new(extra: &str, peers: usize) -> Setup {
        let a = Netns::new("a");
        let t = Netns::new("t");
        let keys = Keys::new();
        let ia = iface("f");
        let key_file = keys.dir.path().join("gen/wg.key");
        let (psk, _) = keys.psk("p");
        let peer_list = (0..peers as u32).map(|i| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_be_bytes());
            b[31] = 0x66;
            let public = wg_exec_steps::Key::from_bytes(b, false).to_base64();
            conf::Peer::new(
                &public,
                &[
                    &format!("198.18.{}.{}/32", i / 256, i % 256),
                    &format!("2001:db8:3::{i:x}/128"),
                ],
            )
            .with(format!(
                "preshared_key_file: \"{}\", endpoint: \"203.0.113.{}:51820\", persistent_keepalive: 25",
                psk.display(),
                i % 250 + 1
            ))
        });
        let body = conf::Conf::new(&["192.0.2.1/24", "2001:db8:1::1/64"], &key_file)
            .with("generate_private_key_file: true, listen_port: 51820, mtu: 1380")
            .with("table: \"77\", metric: 5")
            .with(format!("socket_namespace: \"{}\"", a.name))
            .with(format!("interface_namespace: \"{}\"", t.name))
            .with("backend: Userspace")
            .with(extra)
            .peers(peer_list)
            .render();
        let cfg = keys.write("wg.ron", &body);
        let before = (a.snapshot(), t.snapshot());
        Setup {
            _guard: SocketGuard(ia.clone()),
            a,
            t,
            keys,
            ia,
            cfg,
            key_file,
            before,
        }
    }

    fn run(&self, env: &str, args: &str) -> std::process::Output {
        wg_exec(
            env,
            &format!("{args} {} --config {}", self.ia, self.cfg.display()),
        )
    }

    /// Everything as before up; the generated key file too unless `key_stays`.
    fn no_trace(&self, key_stays: bool, what: &str) {
        assert_eq!(self.a.snapshot(), self.before.0, "{what}: netns a");
        assert_eq!(self.t.snapshot(), self.before.1, "{what}: netns t");
        assert!(!socket_exists(&self.ia), "{what}: UAPI socket");
        assert_eq!(wireguard_go_processes(&self.ia), 0, "{what}: wireguard-go");
        assert!(
            !Path::new(&journal_path(&self.ia)).exists(),
            "{what}: journal"
        );
        assert!(
            !Path::new(&format!("{STATE_DIR}/{}.lock", self.ia)).exists(),
            "{what}: lock"
        );
        if !key_stays {
            assert!(!self.key_file.exists(), "{what}: generated key file");
        }
    }

    fn spawn(&self, env: &[(&str, &str)], args: &str) -> Child {
        let mut cmd = Command::new(wg_exec_bin());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args.split_whitespace())
            .arg(&self.ia)
            .arg("--config")
            .arg(&self.cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Reads the child's stderr until its test pause line; returns what it said so far.
fn wait_for_pause(child: &mut Child) -> String {
    wait_for_pause_at(child, "")
}

fn wait_for_pause_at(child: &mut Child, at: &str) -> String {
    let mut said = String::new();
    let stderr = child.stderr.as_mut().unwrap();
    let mut reader = BufReader::new(stderr);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("wg-exec ended before its pause {at}: {said}");
        }
        said.push_str(&line);
        if line.contains("test pause") {
            return said;
        }
    }
}

fn signal(child: &Child, sig: &str) {
    must(&format!("kill -{sig} {}", child.id()));
}

fn rest_of_stderr(child: &mut Child) -> String {
    let mut s = String::new();
    use std::io::Read;
    child
        .stderr
        .as_mut()
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn a_fault_at_every_step_of_up_leaves_no_trace() {
    if !real_environment("faults_up") {
        return;
    }
    let s = Setup::new("pre_setup: \"true\", post_setup: \"true\",", 3);
    for step in UP_STEPS {
        let out = s.run(&format!("WG_EXEC_FAULT='{step}'"), "up");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{step}: {err}");
        assert!(
            err.contains(&format!("failed at step '{step}'")),
            "{step}: {err}"
        );
        assert!(err.contains("injected fault"), "{step}: {err}");
        s.no_trace(false, step);
    }
    // And without a fault it all works.
    ok(s.run("", "up"));
    ok(s.run("", "down"));
    s.no_trace(true, "after a clean up and down");
}

#[test]
fn a_fault_at_every_step_of_down() {
    if !real_environment("faults_down") {
        return;
    }
    let s = Setup::new("pre_shutdown: \"true\", post_shutdown: \"true\",", 3);
    for step in ["pre_shutdown", "post_shutdown"] {
        ok(s.run("", "up"));
        let out = s.run(&format!("WG_EXEC_FAULT='{step}'"), "down");
        let err = text(&out.stderr);
        // A failing hook is reported and down goes on: the interface is gone.
        assert_eq!(out.status.code(), Some(1), "{step}: {err}");
        assert!(err.contains(&format!("step '{step}'")), "{step}: {err}");
        s.no_trace(true, step);
    }
    // The teardown itself failing leaves the link, says so, and keeps the journal for the
    // next down, which then removes everything.
    ok(s.run("", "up"));
    let out = s.run("WG_EXEC_FAULT=teardown", "down");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("step 'teardown'") && err.contains("left behind"),
        "{err}"
    );
    assert!(s.t.has_link(&s.ia));
    assert!(Path::new(&journal_path(&s.ia)).exists());
    ok(s.run("", "down"));
    s.no_trace(true, "second down");
}

/// Every place a kill can land: before each step, and after it but before the journal says so.
fn positions() -> Vec<String> {
    UP_STEPS
        .iter()
        .flat_map(|s| [s.to_string(), format!("after:{s}")])
        .collect()
}

#[test]
fn sigkill_at_every_step_of_up_then_down_or_up_recovers() {
    if !real_environment("sigkill") {
        return;
    }
    let s = Setup::new("pre_setup: \"true\", post_setup: \"true\",", 3);
    for pos in positions() {
        // Killed, then down: no trace at all (the generated key file goes too).
        let mut child = s.spawn(&[("WG_EXEC_PAUSE", &pos)], "up");
        wait_for_pause_at(&mut child, &pos);
        signal(&child, "KILL");
        child.wait().unwrap();
        let out = s.run("", "down");
        assert!(out.status.success(), "{pos}: {}", text(&out.stderr));
        s.no_trace(false, &format!("down after SIGKILL at {pos}"));

        // Killed, then up: it rolls the unfinished one back, says so, and succeeds.
        let mut child = s.spawn(&[("WG_EXEC_PAUSE", &pos)], "up");
        wait_for_pause_at(&mut child, &pos);
        signal(&child, "KILL");
        child.wait().unwrap();
        let out = s.run("", "up");
        let err = text(&out.stderr);
        assert!(out.status.success(), "{pos}: {err}");
        assert!(
            err.contains("did not finish; rolling it back first"),
            "{pos}: {err}"
        );
        assert!(s.t.has_link(&s.ia), "{pos}");
        assert_eq!(s.t.wg_dump(&s.ia).len(), 4, "{pos}");
        ok(s.run("", "down"));
        s.no_trace(true, &format!("up and down after SIGKILL at {pos}"));
        std::fs::remove_file(&s.key_file).unwrap();
    }
}

#[test]
fn sigterm_in_the_middle_of_an_up_of_2000_peers_rolls_back() {
    if !real_environment("sigterm") {
        return;
    }
    let s = Setup::new("", 2000);
    let mut child = s.spawn(&[("WG_EXEC_PAUSE", "peer set"), ("RUST_LOG", "info")], "up");
    wait_for_pause(&mut child);
    assert!(s.t.has_link(&s.ia), "the link exists while paused");
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    let err = rest_of_stderr(&mut child);
    assert_eq!(status.code(), Some(1), "{err}");
    // The current step finished (2000 peers configured), then everything was rolled back.
    assert!(err.contains("configured 2000 peers"), "{err}");
    assert!(err.contains("interrupted by a signal; rolled back: peer set, up, key, addresses, mtu, netns move, link add and generate key file"), "{err}");
    s.no_trace(false, "after SIGTERM");
}

#[test]
fn two_ups_of_one_interface_race_and_exactly_one_wins() {
    if !real_environment("race") {
        return;
    }
    let s = Setup::new("", 50);
    let a = s.spawn(&[], "up");
    let b = s.spawn(&[], "up");
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [oa.status.code(), ob.status.code()];
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(1)),
        "{codes:?}"
    );
    let loser = if oa.status.success() { &ob } else { &oa };
    assert!(
        text(&loser.stderr).contains("it is already up"),
        "{}",
        text(&loser.stderr)
    );
    assert_eq!(
        s.t.ip(&format!("-o link show dev {}", s.ia))
            .lines()
            .count(),
        1
    );
    assert!(!s.a.has_link(&s.ia));
    assert_eq!(wireguard_go_processes(&s.ia), 1);
    ok(s.run("", "down"));
    s.no_trace(true, "after the race");
}

#[test]
fn the_lock_waits_a_bounded_time_and_other_interfaces_do_not_wait() {
    if !real_environment("lock") {
        return;
    }
    let s = Setup::new("", 1);
    let mut first = s.spawn(&[("WG_EXEC_PAUSE", "peer set")], "up");
    wait_for_pause(&mut first);
    let started = std::time::Instant::now();
    let out = s.run("", "up --wait 1");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "another wg-exec (pid {}) is working on {}",
            first.id(),
            s.ia
        )),
        "{err}"
    );
    assert!(err.contains("did not finish within 1 s"), "{err}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    // Another interface is not held up by the first one's lock.
    let other = Setup::new("", 1);
    ok(other.run("", "up"));
    ok(other.run("", "down"));
    signal(&first, "TERM");
    assert_eq!(first.wait().unwrap().code(), Some(1));
    s.no_trace(false, "after the paused up was stopped");
}

#[test]
fn down_removes_what_up_created_after_the_configuration_changed_or_vanished() {
    if !real_environment("config_change") {
        return;
    }
    let s = Setup::new("", 3);
    ok(s.run("", "up"));
    assert_eq!(s.t.ip("route show table 77").lines().count(), 3);
    // Peers removed, the table changed, the interface namespace dropped.
    let changed = std::fs::read_to_string(&s.cfg)
        .unwrap()
        .replace("table: \"77\"", "table: \"main\"")
        .replace(&format!("interface_namespace: \"{}\",", s.t.name), "");
    let changed = changed[..changed.find("peers: [").unwrap()].to_string() + "peers: [],\n)";
    std::fs::write(&s.cfg, changed).unwrap();
    ok(s.run("", "down"));
    s.no_trace(true, "after down with a changed configuration");

    // Up again, then the configuration is deleted: down follows the journal alone and runs
    // the shutdown hook recorded at up.
    std::fs::remove_file(&s.key_file).unwrap();
    let marker = std::env::temp_dir().join(format!("wg-exec-test-{}", unique()));
    let again = Setup::new(&format!("pre_shutdown: \"touch {}\",", marker.display()), 2);
    ok(again.run("", "up"));
    std::fs::remove_file(&again.cfg).unwrap();
    let out = again.run("", "down");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(marker.exists(), "the recorded pre_shutdown ran");
    std::fs::remove_file(&marker).unwrap();
    again.no_trace(true, "after down without a configuration");
}

#[test]
fn without_a_journal_down_falls_back_to_the_configuration_and_says_so() {
    if !real_environment("no_journal") {
        return;
    }
    let s = Setup::new("", 1);
    ok(s.run("", "up"));
    std::fs::remove_file(journal_path(&s.ia)).unwrap();
    let out = s.run("", "down");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no journal"),
        "{}",
        text(&out.stderr)
    );
    s.no_trace(true, "down from the configuration");
}

#[test]
fn down_with_an_unusable_journal_sets_it_aside_and_follows_the_configuration() {
    if !real_environment("unusable_journal") {
        return;
    }
    let s = Setup::new("", 1);
    let jpath = PathBuf::from(journal_path(&s.ia));
    let dir = jpath.parent().unwrap().to_path_buf();
    let aside = || -> Vec<PathBuf> {
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&format!("{}.ron.unusable-", s.ia))
            })
            .collect()
    };
    type Damage = fn(&str) -> String;
    let damages: [(&str, Damage, &str); 3] = [
        (
            "truncated",
            |t| t[..t.len() / 2].to_string(),
            "not a journal",
        ),
        (
            "another format version",
            |t| t.replace("version: 2", "version: 7"),
            "format version 7; this wg-exec reads version 2",
        ),
        (
            "edited by hand",
            |t| t.replace("Complete", "Finished"),
            "not a journal of version 2",
        ),
    ];
    for (what, damage, reason) in damages {
        ok(s.run("", "up"));
        let text_before = std::fs::read_to_string(&jpath).unwrap();
        let damaged = damage(&text_before);
        std::fs::write(&jpath, &damaged).unwrap();
        // --print says what a real down does, and changes nothing.
        let out = s.run("", "down --print");
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("link del dev {}", s.ia)));
        assert!(
            text(&out.stderr).contains("a real down sets it aside"),
            "{what}"
        );
        assert_eq!(std::fs::read_to_string(&jpath).unwrap(), damaged);
        // Up refuses and points at down.
        let out = s.run("", "up");
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(text(&out.stderr).contains("sets it aside and takes the interface down"));
        // Down says why, keeps the file aside and takes the interface down.
        let out = s.run("", "down");
        let err = text(&out.stderr);
        assert!(out.status.success(), "{what}: {err}");
        assert!(err.contains(reason), "{what}: {err}");
        assert!(
            err.contains("falling back to the configuration"),
            "{what}: {err}"
        );
        let kept = aside();
        assert_eq!(kept.len(), 1, "{what}: {kept:?}");
        assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), damaged);
        std::fs::remove_file(&kept[0]).unwrap();
        s.no_trace(true, what);
    }
}

#[test]
fn down_print_follows_the_journal_when_there_is_one() {
    if !real_environment("down_print_journal") {
        return;
    }
    let s = Setup::new("", 1);
    ok(s.run("", "up"));
    // The configuration no longer names the interface namespace: a real down follows the
    // journal (the link is in t), and so does --print.
    let changed = std::fs::read_to_string(&s.cfg)
        .unwrap()
        .replace(&format!("interface_namespace: \"{}\",", s.t.name), "");
    std::fs::write(&s.cfg, changed).unwrap();
    let out = s.run("", "down --print");
    assert_eq!(
        text(&out.stdout),
        format!("ip -n {} link del dev {}\n", s.t.name, s.ia)
    );
    ok(s.run("", "down"));
    s.no_trace(true, "after down");
    // Without a journal, --print shows the configuration's plan.
    let out = s.run("", "down --print");
    assert_eq!(
        text(&out.stdout),
        format!("ip -n {} link del dev {}\n", s.a.name, s.ia)
    );
}

#[test]
fn up_refuses_an_interface_it_did_not_create() {
    if !real_environment("adopt") {
        return;
    }
    let s = Setup::new("", 1);
    // Someone else's link of that name in the interface namespace.
    s.t.ip(&format!("link add {} type veth peer name {}p", s.ia, s.ia));
    let before = s.t.snapshot();
    let out = s.run("", "up");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{} in netns {} already exists and wg-exec has no record of creating it",
            s.ia, s.t.name
        )),
        "{err}"
    );
    assert_eq!(s.t.snapshot(), before);
    assert!(!s.key_file.exists());
}

#[test]
fn no_secret_reaches_output_logs_journal_argv_or_environment() {
    if !real_environment("secrets") {
        return;
    }
    let a = Netns::new("a");
    let keys = Keys::new();
    let ia = iface("s");
    let _g = SocketGuard(ia.clone());
    let private = must("wg genkey").trim().to_string();
    let psk = must("wg genpsk").trim().to_string();
    let hex = |b64: &str| wg_exec_steps::Key::from_base64(b64, true).unwrap().to_hex();
    let secrets = [private.clone(), psk.clone(), hex(&private), hex(&psk)];
    let seen = keys.dir.path().join("hook");
    let cfg = keys.write(
        "s.ron",
        &conf::Conf::inline_key(&["192.0.2.1/24"], &private)
            .with(format!(
                "listen_port: 51820, socket_namespace: \"{}\", backend: Userspace",
                a.name
            ))
            .with(format!(
                "pre_setup: \"cat /proc/$$/environ /proc/$$/cmdline > {0}.pre; env >> {0}.pre\"",
                seen.display()
            ))
            .with(format!(
                "pre_shutdown: \"cat /proc/$$/environ /proc/$$/cmdline > {}.down\"",
                seen.display()
            ))
            .peer(
                conf::Peer::new(
                    "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
                    &["198.18.0.0/24"],
                )
                .with(format!(
                    "preshared_key: \"{psk}\", endpoint: \"203.0.113.2:51820\""
                )),
            )
            .render(),
    );
    let mut child = Command::new(wg_exec_bin())
        .args(["-vv", "up", &ia, "--config"])
        .arg(&cfg)
        .env("WG_EXEC_PAUSE", "after:peer set")
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = wait_for_pause(&mut child);
    // While it runs: its argv and environment, wireguard-go's, and the journal.
    let mut places = vec![
        std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap(),
        std::fs::read(format!("/proc/{}/environ", child.id())).unwrap(),
        std::fs::read(journal_path(&ia)).unwrap(),
    ];
    for pid in text(&must(&format!("pgrep -f -x 'wireguard-go {ia}'")).into_bytes()).lines() {
        places.push(std::fs::read(format!("/proc/{pid}/cmdline")).unwrap());
        places.push(std::fs::read(format!("/proc/{pid}/environ")).unwrap());
    }
    signal(&child, "TERM");
    child.wait().unwrap();
    said.push_str(&rest_of_stderr(&mut child));
    places.push(said.into_bytes());
    let print = wg_exec("", &format!("up {ia} --config {} --print", cfg.display()));
    places.push(print.stdout);
    places.push(print.stderr);
    // A complete up and down with every log on.
    let up = wg_exec(
        "RUST_LOG=trace",
        &format!("-vv up {ia} --config {}", cfg.display()),
    );
    places.push(up.stdout);
    places.push(up.stderr.clone());
    assert!(up.status.success(), "{}", text(&up.stderr));
    let down = wg_exec(
        "RUST_LOG=trace",
        &format!("-vv down {ia} --config {}", cfg.display()),
    );
    places.push(down.stdout);
    places.push(down.stderr);
    places.push(std::fs::read(seen.with_extension("pre")).unwrap());
    places.push(std::fs::read(seen.with_extension("down")).unwrap());
    let check = wg_exec("", &format!("check {ia} --config {}", cfg.display()));
    places.push(check.stdout);
    places.push(check.stderr);
    for (i, place) in places.iter().enumerate() {
        let text = String::from_utf8_lossy(place);
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "secret found in place {i}: {text}"
            );
        }
    }
    // The keys did reach the device (read back by the observer).
    assert!(!socket_exists(&ia));
}

#[test]
fn capabilities_are_checked_dropped_and_enough_for_a_non_root_unit() {
    if !real_environment("capabilities") {
        return;
    }
    // As root, with no hooks: everything but what the plan needs is dropped before the first
    // step, the bounding set included.
    let s = Setup::new("", 1);
    let mut child = s.spawn(&[("WG_EXEC_PAUSE", "link add")], "up");
    wait_for_pause(&mut child);
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let caps = |field: &str| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .map(|l| u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap())
            .unwrap()
    };
    const NET_ADMIN: u64 = 1 << 12;
    const SYS_ADMIN: u64 = 1 << 21;
    assert_eq!(caps("CapEff:"), NET_ADMIN | SYS_ADMIN, "{status}");
    // CAP_SETPCAP stays permitted, never effective nor in the bounding set: a child running
    // as root needs it to shrink its own bounding set before exec (tests/children.rs).
    const SETPCAP: u64 = 1 << 8;
    assert_eq!(caps("CapPrm:"), NET_ADMIN | SYS_ADMIN | SETPCAP);
    assert_eq!(caps("CapBnd:"), NET_ADMIN | SYS_ADMIN);
    assert_eq!(caps("CapAmb:"), 0);
    signal(&child, "TERM");
    child.wait().unwrap();
    s.no_trace(false, "after the paused up");

    // The unit user owns its files (key directory, psk, configuration, state directory).
    let state = s.keys.dir.path().join("state");
    let keydir = s.keys.dir.path().join("gen");
    must(&format!(
        "mkdir -p {0} {1} && chown 65534:65534 {0} {1} {2} {3} {3}/*.psk",
        state.display(),
        keydir.display(),
        s.cfg.display(),
        s.keys.dir.path().display()
    ));

    // As nobody without capabilities: exit 2 naming what is missing and how to grant it.
    let nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all";
    let out = sh(&format!(
        "WG_EXEC_STATE_DIR={0} {nobody} {1} up {2} --config {3}",
        state.display(),
        wg_exec_bin(),
        s.ia,
        s.cfg.display()
    ));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("missing capabilities CAP_NET_ADMIN, CAP_SYS_ADMIN"),
        "{err}"
    );
    assert!(
        err.contains("AmbientCapabilities=CAP_NET_ADMIN CAP_SYS_ADMIN"),
        "{err}"
    );
    s.no_trace(false, "refused for lack of capabilities");

    // As nobody with exactly the two ambient capabilities, like a unit with
    // User=nobody AmbientCapabilities=CAP_NET_ADMIN CAP_SYS_ADMIN: up and down work. The UAPI
    // socket directory is the user's (a unit would use RuntimeDirectory=wireguard) and
    // /dev/net/tun is usable as udev makes it, whatever this machine's node is.
    let sockets = s.keys.dir.path().join("wireguard");
    must(&format!(
        "mkdir -p {0} && chown 65534:65534 {0}",
        sockets.display()
    ));
    let as_unit = |op: &str| {
        sh(&as_unit_user(
            &["net_admin", "sys_admin"],
            &sockets,
            &format!(
                "env WG_EXEC_STATE_DIR={state} {{user}} {bin} -v {op} {ia} --config {cfg}",
                state = state.display(),
                bin = unit_bin(s.keys.dir.path()),
                ia = s.ia,
                cfg = s.cfg.display()
            ),
        ))
    };
    let out = as_unit("up");
    assert!(out.status.success(), "non-root up: {}", text(&out.stderr));
    assert!(s
        .t
        .ip(&format!("address show dev {}", s.ia))
        .contains("192.0.2.1/24"));
    assert!(s
        .t
        .ip(&format!("link show dev {}", s.ia))
        .contains("mtu 1380"));
    let out = as_unit("down");
    assert!(out.status.success(), "non-root down: {}", text(&out.stderr));
    assert!(!s.t.has_link(&s.ia));
    assert_eq!(s.t.snapshot(), s.before.1);
    assert_eq!(wireguard_go_processes(&s.ia), 0);
}
