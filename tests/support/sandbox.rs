//! The README tests' sandbox: ONE private mount namespace per test (a holder process made by
//! `unshare --mount --propagation private`; commands enter it with `nsenter --mount`), with a
//! private /run (its own /run/netns and /run/wireguard), overlays on /etc and /var/lib, a
//! bound /etc/wg-exec, /etc/hosts and wg-exec's state directory, and a 0666 /dev/net/tun.
//! Nothing touches the machine; dropped (also on failure), every process in its network
//! namespaces is killed and they are deleted. See tests/readme.rs for the whole picture.

use super::guard::STATE_DIR;
use super::keys::Keys;
use super::netns::{snapshot_by, wait_ipv6};
use super::run::wg_exec_bin;
use super::shell::{must, text};
use super::systemd::{Unit, SYSTEMD_PATH};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The namespace wg-exec runs in, standing in for the machine's own.
pub const HOST: &str = "host";

/// Kills every process in the private network namespaces and deletes them.
pub const CLEANUP: &str = "for n in $(ip netns list 2>/dev/null | cut -d' ' -f1); do \
     ip netns pids \"$n\" 2>/dev/null | xargs -r kill -9; ip netns del \"$n\"; done";

pub struct Sandbox {
    /// A temporary directory in /var/tmp (a unit's PrivateTmp= does not hide what is bound
    /// from it before).
    pub dir: Keys,
    pub holder: Child,
    _holder_out: BufReader<ChildStdout>,
}

impl Sandbox {
    /// A private mount namespace as described at the top; `hosts` is its /etc/hosts.
    pub fn new(hosts: &str) -> Sandbox {
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
    pub fn state_path(&self, name: &str) -> PathBuf {
        self.path("var-lib").join(name)
    }

    /// /var/lib/NAME inside: a directory of the sandbox's own bound there (0755 root, made
    /// once).
    pub fn private_state(&self, name: &str) {
        let src = self.state_path(name);
        std::fs::create_dir_all(&src).unwrap();
        self.must(&format!(
            "[ /var/lib/{name} -ef {0} ] || {{ mkdir -p /var/lib/{name} && \
             mount --bind {0} /var/lib/{name}; }}",
            src.display()
        ));
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.dir.path().join(rel)
    }

    /// Where a path under /etc/wg-exec (inside) is on the machine.
    pub fn etc_wg_exec(&self, inside: &str) -> PathBuf {
        let rel = inside
            .strip_prefix("/etc/wg-exec/")
            .unwrap_or_else(|| panic!("{inside} is not under /etc/wg-exec"));
        self.path("etc-wg-exec").join(rel)
    }

    /// A shell command in the private mount namespace (as root, in the machine's network
    /// namespace: every command that touches the network says `ip netns exec` or `ip -n`).
    pub fn sh(&self, cmd: &str) -> Output {
        Command::new("nsenter")
            .arg(format!("--target={}", self.holder.id()))
            .args(["--mount", "--", "/bin/sh", "-c", cmd])
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    pub fn must(&self, cmd: &str) -> String {
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
    pub fn netns(&self, name: &str) {
        self.must(&format!(
            "ip netns add {name} && ip netns exec {name} sysctl -qw \
             net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 && \
             ip -n {name} link set lo up"
        ));
    }

    /// A veth between `a` (203.0.113.1/24, 2001:db8:ffff::1/64) and `b` (.2, ::2), settled
    /// (IPv6 link-local routes in place) so that snapshots compare.
    pub fn veth(&self, a: &str, b: &str) {
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
            wait_ipv6(dev, |args| self.must(&format!("ip -n {ns} {args}")));
        }
    }

    /// Links, addresses, routes of all tables and rules of a namespace, as `ip -j` shows them.
    pub fn snapshot(&self, ns: &str) -> String {
        snapshot_by(|what| self.must(&format!("ip -n {ns} -j {what}")))
    }

    pub fn snapshots(&self, spaces: &[&str]) -> Vec<(String, String)> {
        spaces
            .iter()
            .map(|ns| (ns.to_string(), self.snapshot(ns)))
            .collect()
    }

    pub fn has_link(&self, ns: &str, dev: &str) -> bool {
        self.sh(&format!("ip -n {ns} link show dev {dev}"))
            .status
            .success()
    }

    /// `uid args` of every process in a network namespace.
    pub fn processes(&self, ns: &str) -> String {
        self.must(&format!(
            "ip netns pids {ns} | xargs -r ps -o uid=,args= -p"
        ))
    }

    pub fn wg_dump(&self, ns: &str, dev: &str) -> Vec<Vec<String>> {
        self.must(&format!("ip netns exec {ns} wg show {dev} dump"))
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// Pings until one answer arrives, for at most 20 s (the first handshake may be lost and
    /// is retried after 5 s).
    pub fn ping(&self, ns: &str, addr: &str) -> bool {
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
    pub fn entries(&self, dir: &str) -> String {
        self.must(&format!("ls -A {dir} 2>/dev/null || true"))
    }

    /// /etc/wg-exec as the README and non-root.conf say the package makes it for a non-root
    /// unit: owned by root and the unit's group, the directory 0750, its files readable by the
    /// group (0640), its subdirectories (the key directory) writable by it (0770) for
    /// generate_private_key_file. As it is for a root unit.
    pub fn etc_for(&self, unit: &Unit) {
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
    pub fn config_files(&self) -> String {
        self.must("find /etc/wg-exec -printf '%P %m %U\\n' | sort")
    }

    /// wg-exec as root, the way a user types it, inside the namespace standing in for the
    /// machine's own, with a clean environment (no inherited WG_EXEC_STATE_DIR,
    /// WG_PROCESS_FOREGROUND, ...). WG_ENDPOINT_RESOLUTION_RETRIES=0: a failed lookup fails at
    /// once.
    pub fn wg_exec_as_root(&self, args: &str) -> Output {
        self.sh(&format!(
            "timeout -k 5 90 ip netns exec {HOST} env -i PATH={SYSTEMD_PATH} \
             WG_ENDPOINT_RESOLUTION_RETRIES=0 {} {args} </dev/null",
            wg_exec_bin()
        ))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.sh(CLEANUP);
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}

/// The top-level objects of the JSON array `ip -j` prints.
pub fn json_objects(json: &str) -> Vec<String> {
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

pub fn assert_same(sb: &Sandbox, before: &[(String, String)], what: &str) {
    for (ns, b) in before {
        assert_eq!(
            &sb.snapshot(ns),
            b,
            "{what}: namespace {ns} is not as it was before"
        );
    }
}
