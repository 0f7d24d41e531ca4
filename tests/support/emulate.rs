//! systemd, emulated: there is no systemd here, so this carries out the [Service] settings of a
//! shipped unit that wg-exec's work depends on, the way systemd does, inside a `Sandbox`
//! (Type=oneshot with RemainAfterExit=yes, Type=simple as a `Service`, User=, Group=,
//! StateDirectory=, RuntimeDirectory=, PrivateTmp=, UMask=, Environment=, capabilities, the
//! Exec lines, %i).

use super::run::wg_exec_bin;
use super::sandbox::{Sandbox, HOST};
use super::shell::{q, text};
use super::systemd::{exec_argv, root_line, Kind, Unit, SYSTEMD_PATH};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

impl Sandbox {
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
    pub fn install_unit(&self, unit: &Unit) {
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
    pub fn private_tmp(&self, unit: &Unit) -> PathBuf {
        self.path("private-tmp").join(unit.instance_name())
    }

    /// What systemd does when a unit starts, before its ExecStart: its RuntimeDirectory= under
    /// /run and its StateDirectory= under /var/lib (private, see `private_state`) made if
    /// missing (0755) and owned by the unit's user and group (if the top is not, the whole
    /// tree is chowned, as systemd does: with a shortcut when the top is right), a
    /// StateDirectory= given its StateDirectoryMode= at each start, the directories of its
    /// PrivateTmp=.
    pub fn unit_starting(&self, unit: &Unit) {
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
    pub fn root_lines(&self, unit: &Unit, which: &str, lines: &[String]) {
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
    pub fn unit_started(&self, unit: &Unit) {
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
    pub fn unit_command(
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
    pub fn exec_unit(
        &self,
        unit: &Unit,
        ns: &str,
        line: &str,
        extra_env: &[(&str, &str)],
    ) -> Output {
        self.sh(&self.unit_command(unit, ns, line, extra_env, Some(90)))
    }

    /// An interface unit's start: systemd's part (`unit_starting`), its ExecStart lines (each
    /// run to its end and successful), then ExecStartPost= (`unit_started`). `extra_env` as in
    /// `unit_command`.
    pub fn start_unit(&self, unit: &Unit, extra_env: &[(&str, &str)]) {
        self.unit_starting(unit);
        self.exec_lines(unit, "ExecStart", extra_env, &unit.start);
        self.unit_started(unit);
    }

    /// The lines of a unit's Exec setting (`which`), in the namespace standing in for the
    /// machine's own, each run to its end and successful.
    pub fn exec_lines(
        &self,
        unit: &Unit,
        which: &str,
        extra_env: &[(&str, &str)],
        lines: &[String],
    ) {
        for line in lines {
            let out = self.exec_unit(unit, HOST, line, extra_env);
            assert!(
                out.status.success(),
                "{}: {which}={line} failed ({}): {}",
                unit.title,
                out.status,
                text(&out.stderr)
            );
        }
    }

    /// The start of a Type=simple unit (`unit_starting`, then its ExecStart, not waited for):
    /// its main process, with stdout and stderr (systemd's journal) to the file `log` in the
    /// sandbox's directory.
    pub fn spawn_unit(
        &self,
        unit: &Unit,
        ns: &str,
        extra_env: &[(&str, &str)],
        log: &str,
    ) -> Service {
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
    pub fn unit_stopped(&self, unit: &Unit) {
        self.root_lines(unit, "ExecStopPost", &unit.stop_post);
        if !unit.preserve {
            for d in &unit.runtime_dirs {
                self.must(&format!("rm -rf /run/{d}"));
            }
        }
    }
}

/// A Type=simple unit started by `spawn_unit`: its main process (wg-exec itself, through the
/// chain of execs) and its log. Dropped while running (a failed test), it is killed; the
/// sandbox's cleanup would kill it too, with everything in its network namespace.
pub struct Service {
    pub what: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Service {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        text(&std::fs::read(&self.log).unwrap_or_default())
    }

    /// None while running.
    pub fn status(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .expect("wait for the unit's main process")
    }

    /// Waits at most `limit` for a log line that contains `needle`, while the main process
    /// runs; how long it took.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) -> Duration {
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
    pub fn wait_exit(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
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
    pub fn sigterm(&self) {
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
