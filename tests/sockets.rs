//! Whose daemon `down` stops: the UAPI socket /run/wireguard/NAME.sock is one path for every
//! network namespace, so a wireguard-go serving NAME in another namespace (another interface)
//! is never taken for ours; and a recorded pid reused by another program is never killed.

mod support;

use support::conf::Conf;
use support::*;

/// A wireguard-go serving `name` in namespace `b`, brought up there by wg-exec (with its own
/// state directory and configuration): it holds CAP_NET_ADMIN only, as every daemon wg-exec
/// starts.
fn other_daemon(b: &Netns, name: &str, keys: &Keys) -> Vec<i32> {
    let state = keys.dir.path().join("state-b");
    must(&format!("mkdir -p {}", state.display()));
    let (key, _) = keys.private("b");
    let conf = Conf::new(&["192.0.2.2/24"], &key).with("backend: Userspace");
    let config = keys.write("b.ron", &conf.render());
    ok(sh(&format!(
        "ip netns exec {} env WG_EXEC_STATE_DIR={} {} -v up {name} --config {}",
        b.name,
        state.display(),
        wg_exec_bin(),
        config.display()
    )));
    assert!(socket_exists(name), "no socket for {name}");
    let pids = must(&format!("pgrep -f -x 'wireguard-go {name}'"));
    let pids: Vec<i32> = pids
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 1, "{pids:?}");
    pids
}

/// A host and wg-exec as root there with a state directory of its own, for a configuration
/// with the userspace backend.
fn userspace_host(tag: &str) -> (Host, Wg) {
    let h = Host::new(tag);
    let (key, _) = h.keys.private("a");
    let config = h.keys.write(
        "c.ron",
        &Conf::new(&["192.0.2.1/24"], &key)
            .with("backend: Userspace")
            .render(),
    );
    let wg = Wg::on(Who::Root, &h, &config).verbose();
    (h, wg)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// `down` without a journal (the configuration's plan) of an interface whose link is in
/// namespace A, while wireguard-go serves the same name in namespace B: B's daemon and its
/// socket are left alone, for every backend the configuration may name.
#[test]
fn down_without_journal_leaves_another_namespaces_daemon() {
    if !real_environment("down leaves another namespace's daemon") {
        return;
    }
    for backend in ["", "backend: Kernel", "backend: Userspace"] {
        let a = Netns::new("a");
        let b = Netns::new("b");
        let keys = Keys::new();
        let name = iface("s");
        let _s = SocketGuard(name.clone());
        let state = keys.dir.path().join("state");
        must(&format!("mkdir -p {}", state.display()));
        let (key, _) = keys.private("a");
        let mut conf = Conf::new(&["192.0.2.1/24"], &key);
        if !backend.is_empty() {
            conf = conf.with(backend);
        }
        let config = keys.write("c.ron", &conf.render());
        let pids = other_daemon(&b, &name, &keys);
        // Our link (its journal lost): a TUN link of that name in A.
        a.ip(&format!("tuntap add {name} mode tun"));
        let out = sh(&format!(
            "ip netns exec {} env WG_EXEC_STATE_DIR={} {} -v down {name} --config {}",
            a.name,
            state.display(),
            wg_exec_bin(),
            config.display()
        ));
        let said = text(&out.stderr);
        assert!(
            alive(pids[0]),
            "{backend:?}: down in {} killed wireguard-go {name} of {}: {said}",
            a.name,
            b.name
        );
        assert!(
            socket_exists(&name),
            "{backend:?}: down removed B's socket: {said}"
        );
        assert!(b.has_link(&name), "{backend:?}: B's link is gone: {said}");
        assert!(!a.has_link(&name), "{backend:?}: A's link remains: {said}");
    }
}

/// The same down of our own userspace device (its journal lost) still ends its daemon and
/// removes its socket: the daemon is in the link's namespace.
#[test]
fn down_without_journal_stops_its_own_daemon() {
    if !real_environment("down without journal stops its own daemon") {
        return;
    }
    let (h, wg) = userspace_host("o");
    let (a, name) = (&h.ns, &h.ia);
    let run = |op: &str| wg.run(op);
    ok(run("up"));
    assert_eq!(wireguard_go_processes(name), 1);
    std::fs::remove_file(wg.journal()).unwrap();
    let said = ok(run("down"));
    assert!(said.contains("no journal"), "{said}");
    assert_down_took_all(a, name, &said);
}

/// A pid the journal recorded for the daemon, reused by another program that names the
/// interface among its arguments (a `tcpdump -i NAME`; here a shell running `sleep 1000`): down
/// ends the daemon and never that program.
#[test]
fn down_never_kills_a_reused_pid_that_names_the_interface() {
    if !real_environment("down never kills a reused pid") {
        return;
    }
    let (h, wg) = userspace_host("r");
    let (a, name) = (&h.ns, &h.ia);
    let run = |op: &str| wg.run(op);
    ok(run("up"));
    let daemon: i32 = must(&format!("pgrep -f -x 'wireguard-go {name}'"))
        .trim()
        .parse()
        .unwrap();
    // The impostor: root's, in the same namespace, its arguments naming the interface.
    let mut impostor = std::process::Command::new("ip")
        .args(["netns", "exec", &a.name, "sh", "-c", "sleep 1000; :", "sh"])
        .arg(name)
        .spawn()
        .unwrap();
    let pid = impostor.id() as i32;
    // `ip netns exec` execs the shell in place: the pid is the shell's, naming the interface.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .any(|a| a == name.as_bytes())
    {
        assert!(std::time::Instant::now() < deadline, "no impostor");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // The journal records it in the starter's place (the starter exited; its pid was reused).
    let journal = wg.journal();
    let text_before = std::fs::read_to_string(&journal).unwrap();
    let start = text_before
        .find("userspace_pids: [")
        .expect("pids recorded")
        + 17;
    let end = start + text_before[start..].find(']').unwrap();
    let edited = format!(
        "{}{pid}, {daemon}{}",
        &text_before[..start],
        &text_before[end..]
    );
    std::fs::write(&journal, edited).unwrap();
    let said = text(&run("down").stderr);
    let survived = impostor.try_wait().unwrap().is_none();
    let _ = impostor.kill();
    let _ = impostor.wait();
    assert!(survived, "down killed pid {pid} (sh naming {name}): {said}");
    assert_down_took_all(a, name, &said);
}

/// `status` only reads: the UAPI socket a killed daemon left (nobody listens on it) is reported
/// stale and left in place, never removed.
#[test]
fn status_never_removes_a_stale_socket() {
    if !real_environment("status never removes a stale socket") {
        return;
    }
    let (h, wg) = userspace_host("t");
    let (a, name) = (&h.ns, &h.ia);
    let run = |op: &str| wg.run(op);
    ok(run("up"));
    // SIGKILL: the daemon leaves its socket file behind (and its TUN link goes with it).
    let daemon = must(&format!("pgrep -f -x 'wireguard-go {name}'"));
    must(&format!("kill -9 {}", daemon.trim()));
    // Gone when nobody listens any more (its descriptors close after its command line empties).
    let path = format!("/var/run/wireguard/{name}.sock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&path)
        .err()
        .and_then(|e| e.raw_os_error())
        != Some(libc::ECONNREFUSED)
    {
        assert!(std::time::Instant::now() < deadline, "the daemon lives on");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        socket_exists(name),
        "the stale socket is the test's premise"
    );
    // Its TUN link went with it: one of that name again, so that status gets to the socket.
    a.ip(&format!("tuntap add {name} mode tun"));
    let said = text(&run("status").stderr);
    assert!(
        socket_exists(name),
        "status removed the stale socket: {said}"
    );
    assert!(said.contains("is stale"), "{said}");
}
