//! The scaffold of the real tests: one test host in the plain shape users write (no namespace
//! options: wg-exec runs inside a namespace the test made, as under `ip netns exec`), and
//! wg-exec run there for one interface and configuration, as root or as a non-root unit user
//! with only ambient capabilities, with a state directory of the test's own.

use super::guard::{journal_path, SocketGuard};
use super::keys::Keys;
use super::netns::{Netns, Pair};
use super::observe::{socket_exists, wireguard_go_processes};
use super::run::{as_unit_user, unit_bin, wg_exec, wg_exec_bin, wg_exec_in};
use super::shell::{iface, must, sh};
use std::path::{Path, PathBuf};
use std::process::Output;

/// One test host: a network namespace of its own, keys in a private directory, a unique
/// interface name whose leftovers (socket, journal, records) a guard removes, and the
/// namespace as it was when made, to compare after a down or a rollback.
pub struct Host {
    pub ns: Netns,
    pub keys: Keys,
    pub ia: String,
    /// `ns.snapshot()` when the host was made.
    pub before: String,
    _guard: SocketGuard,
}

impl Host {
    /// `tag` names the namespace and the interface (a letter or two).
    pub fn new(tag: &str) -> Host {
        let ns = Netns::new(tag);
        let keys = Keys::new();
        let ia = iface(tag);
        let before = ns.snapshot();
        Host {
            _guard: SocketGuard(ia.clone()),
            ns,
            keys,
            ia,
            before,
        }
    }

    /// The prefix that runs a command inside the host's namespace.
    pub fn inside(&self) -> String {
        format!("ip netns exec {}", self.ns.name)
    }

    /// `wg-exec ARGS` as root inside the namespace, `env` (e.g. `WG_EXEC_FAULT='...'`, or
    /// nothing) before it, with the default state directory.
    pub fn wg_exec(&self, env: &str, args: &str) -> Output {
        wg_exec(&format!("{env} {}", self.inside()), args)
    }

    /// `wg-exec VERB IFACE --config CFG` as root inside the namespace.
    pub fn op(&self, verb: &str, cfg: &Path) -> Output {
        self.op_with("", verb, cfg)
    }

    /// The same with `env` before it (e.g. `WG_EXEC_FAULT='...'`).
    pub fn op_with(&self, env: &str, verb: &str, cfg: &Path) -> Output {
        self.wg_exec(
            env,
            &format!("{verb} {} --config {}", self.ia, cfg.display()),
        )
    }

    /// The private key of a key file the host made with `keys.private`.
    pub fn key_text(&self, key_file: &Path) -> String {
        std::fs::read_to_string(key_file)
            .unwrap()
            .trim()
            .to_string()
    }

    /// Asserts that links, addresses, routes and rules of the namespace are as when it was made.
    pub fn assert_as_before(&self, what: &str) {
        assert_eq!(self.ns.snapshot(), self.before, "{what}: namespace");
    }

    /// Asserts that nothing of the interface is left: the namespace as before, no link, no UAPI
    /// socket, no wireguard-go, no journal in the default state directory.
    pub fn assert_no_trace(&self, what: &str) {
        self.assert_as_before(what);
        assert!(!self.ns.has_link(&self.ia), "{what}: link");
        assert!(!socket_exists(&self.ia), "{what}: UAPI socket");
        assert_eq!(wireguard_go_processes(&self.ia), 0, "{what}: wireguard-go");
        assert!(
            !Path::new(&journal_path(&self.ia)).exists(),
            "{what}: journal"
        );
    }
}

/// Two test hosts joined by a veth (`Pair`: 203.0.113.1 in `a`, .2 in `b`), keys, and an
/// interface name for each, `ia` in `a` and `ib` in `b`, whose leftovers guards remove.
pub struct TwoHosts {
    pub pair: Pair,
    pub keys: Keys,
    pub ia: String,
    pub ib: String,
    _guards: (SocketGuard, SocketGuard),
}

impl TwoHosts {
    pub fn new() -> TwoHosts {
        let pair = Pair::new();
        let keys = Keys::new();
        let (ia, ib) = (iface("a"), iface("b"));
        TwoHosts {
            _guards: (SocketGuard(ia.clone()), SocketGuard(ib.clone())),
            pair,
            keys,
            ia,
            ib,
        }
    }
}

/// Who runs wg-exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Root,
    /// uid 65534 with only these ambient capabilities (`net_admin`, ...), the way the package's
    /// non-root drop-in runs it (see `as_unit_user`).
    UnitUser(&'static [&'static str]),
}

/// wg-exec for one interface and configuration inside a namespace, run by `who`, with a state
/// directory of the test's own (`WG_EXEC_STATE_DIR`) and, for a unit user, the unit's
/// /run/wireguard (`sockets`).
pub struct Wg {
    pub who: Who,
    pub ns: String,
    pub ia: String,
    pub cfg: PathBuf,
    pub state: PathBuf,
    pub sockets: PathBuf,
    /// Global options before the verb (`-v`).
    pub flags: String,
    bin: String,
}

impl Wg {
    /// Its state directory is `DIR/unit/state` (made, mode 0700), the unit's /run/wireguard
    /// `DIR/unit/wireguard`; `dir` is the test's own (a `Keys` directory). For a unit user,
    /// DIR and everything in it is then chowned to the user, as its unit's files are: make
    /// this after the files the runs read.
    pub fn new(who: Who, dir: &Path, ns: &str, ia: &str, cfg: &Path) -> Wg {
        let unit_dir = dir.join("unit");
        let (state, sockets) = (unit_dir.join("state"), unit_dir.join("wireguard"));
        // The state directory as the shipped units make it (StateDirectoryMode=0700).
        must(&format!(
            "mkdir -p {0} {1} && chmod 0700 {0}",
            state.display(),
            sockets.display()
        ));
        let bin = match who {
            Who::Root => wg_exec_bin().to_string(),
            Who::UnitUser(_) => {
                let bin = unit_bin(dir);
                must(&format!("chown -R 65534:65534 {}", dir.display()));
                bin
            }
        };
        Wg {
            who,
            ns: ns.to_string(),
            ia: ia.to_string(),
            cfg: cfg.to_path_buf(),
            state,
            sockets,
            flags: String::new(),
            bin,
        }
    }

    /// For a host's namespace and interface.
    pub fn on(who: Who, host: &Host, cfg: &Path) -> Wg {
        Wg::new(who, host.keys.dir.path(), &host.ns.name, &host.ia, cfg)
    }

    /// With `-v`.
    pub fn verbose(mut self) -> Wg {
        self.flags = "-v".into();
        self
    }

    /// `wg-exec FLAGS VERB IFACE --config CFG`.
    pub fn run(&self, verb: &str) -> Output {
        self.args(&format!(
            "{verb} {} --config {}",
            self.ia,
            self.cfg.display()
        ))
    }

    /// `wg-exec FLAGS ARGS`.
    pub fn args(&self, args: &str) -> Output {
        let (ns, state, bin, flags) = (&self.ns, self.state.display(), &self.bin, &self.flags);
        match self.who {
            Who::Root => sh(&format!(
                "ip netns exec {ns} env WG_EXEC_STATE_DIR={state} {bin} {flags} {args}"
            )),
            Who::UnitUser(caps) => sh(&as_unit_user(
                caps,
                &self.sockets,
                &format!(
                    "ip netns exec {ns} env WG_EXEC_STATE_DIR={state} {{user}} {bin} {flags} {args}"
                ),
            )),
        }
    }

    /// The journal in the state directory.
    pub fn journal(&self) -> PathBuf {
        self.state.join(format!("{}.ron", self.ia))
    }
}
