//! A userspace implementation that answers `get=1` with hostile text, in the shape users run
//! (no namespace option; `userspace_implementation` names it): wg-exec must fail the step with
//! a clear error, roll everything back and exit 1, never panic (exit 101 with the link up and
//! its key set, as a non-ASCII key once did). The stand-in is a small Python program that makes
//! the TUN link and serves the UAPI socket as wireguard-go does; its first `get` (the readiness
//! probe) is honest, every later one is the hostile answer. Needs root.

mod support;
use std::path::{Path, PathBuf};
use support::conf::{Conf, Peer};
use support::*;

/// The stand-in daemon: `prog IFACE` forks a server and exits 0, like wireguard-go. `ANSWER` is
/// replaced by a Python bytes literal (the hostile answer, without its errno line) and `ENDLESS`
/// by True when the answer is to be repeated without end.
const DAEMON: &str = r#"#!/usr/bin/python3
import fcntl, os, signal, socket, struct, sys, time
name = sys.argv[1]
path = "/var/run/wireguard/%s.sock" % name
if os.fork():
    sys.exit(0)
os.setsid()
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, 0x400454ca, struct.pack("16sH", name.encode(), 0x0001 | 0x1000))
os.makedirs("/var/run/wireguard", exist_ok=True)
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(8)
def bye(*_):
    try:
        os.unlink(path)
    finally:
        os._exit(0)
signal.signal(signal.SIGTERM, bye)
signal.signal(signal.SIGINT, bye)
gets = 0
while True:
    c, _ = srv.accept()
    req = b""
    while not req.endswith(b"\n\n"):
        d = c.recv(65536)
        if not d:
            break
        req += d
    try:
        if req.startswith(b"get=1"):
            gets += 1
            if gets == 1:
                c.sendall(b"listen_port=51820\nerrno=0\n\n")
            elif ENDLESS:
                while True:
                    c.sendall(ANSWER * 1000)
            else:
                c.sendall(ANSWER + b"errno=0\n\n")
        else:
            c.sendall(b"errno=0\n\n")
    except OSError:
        pass
    c.close()
"#;

/// A test host and its private key's text; its configurations name a stand-in daemon.
struct Rig {
    h: Host,
    private: String,
}

impl Rig {
    fn new() -> Rig {
        let h = Host::new("h");
        let (key_file, _) = h.keys.private("h");
        let private = h.key_text(&key_file);
        Rig { h, private }
    }

    /// A configuration whose userspace implementation answers `answer` (endlessly or not).
    fn config(&self, tag: &str, answer: &[u8], endless: bool) -> PathBuf {
        let literal: String = answer.iter().map(|b| format!("\\x{b:02x}")).collect();
        let program = self.h.keys.write(
            &format!("daemon-{tag}"),
            &DAEMON
                .replace("ANSWER", &format!("b\"{literal}\""))
                .replace("ENDLESS", if endless { "True" } else { "False" }),
        );
        must(&format!("chmod 0755 {}", program.display()));
        let (_, peer) = self.h.keys.private("peer");
        let key_file = self.h.keys.dir.path().join("h.key");
        self.h.keys.write(
            &format!("{tag}.ron"),
            &Conf::new(&["192.0.2.1/24"], &key_file)
                .with("listen_port: 51820")
                .with(format!(
                    "backend: Userspace, userspace_implementation: \"{}\"",
                    program.display()
                ))
                .peers([Peer::new(&peer, &["198.18.0.0/24"])])
                .render(),
        )
    }

    fn no_trace(&self, what: &str) {
        let h = &self.h;
        h.assert_as_before(what);
        assert!(!socket_exists(&h.ia), "{what}: UAPI socket");
        assert!(!Path::new(&journal_path(&h.ia)).exists(), "{what}: journal");
        let left = sh(&format!("pgrep -f '[d]aemon-{what} {}'", h.ia));
        assert!(
            !left.status.success(),
            "{what}: the daemon is still running"
        );
    }
}

#[test]
fn hostile_get_answers_fail_the_up_cleanly() {
    if !real_environment("hostile_replies") {
        return;
    }
    let h = Rig::new();
    // 64 bytes of which "é" straddles the first hex pair: a text slice there panicked.
    let straddling = format!("own_public_key=a{}a\n", "é".repeat(31));
    let cases: [(&str, Vec<u8>, bool, &str); 4] = [
        (
            "nonascii",
            straddling.clone().into_bytes(),
            false,
            "UAPI get: cannot read `own_public_key=aéé",
        ),
        (
            "binary",
            b"listen_port=\xff\xfe\n".to_vec(),
            false,
            "UAPI get: cannot read `listen_port=\u{fffd}\u{fffd}`",
        ),
        (
            "endless",
            b"allowed_ip=192.0.2.0/24\n".to_vec(),
            true,
            "an answer longer than 67108864 bytes, refused",
        ),
        (
            "secret",
            format!("private_key=é{}é\n", "1".repeat(60)).into_bytes(),
            false,
            "UAPI get: cannot read `private_key=…`",
        ),
    ];
    for (tag, answer, endless, said) in cases {
        let cfg = h.config(tag, &answer, endless);
        let out = h.h.op("up", &cfg);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{tag}: {err}");
        assert!(err.contains("failed at step 'peer set'"), "{tag}: {err}");
        assert!(err.contains(said), "{tag}: {err}");
        assert!(err.contains("rolled back: "), "{tag}: {err}");
        assert!(!err.contains("panicked"), "{tag}: {err}");
        assert!(!err.contains(&h.private), "{tag}: the private key in {err}");
        h.no_trace(tag);
    }
}
