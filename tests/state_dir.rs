//! The state directory as an attacker who owns it (the non-root unit user, or the userspace
//! daemon running as that user) would use it against root's or the unit's own wg-exec: a lock
//! planted as a symbolic link, a journal planted with a hook, a sysctl and a key file outside
//! what wg-exec writes, a directory or file of another user or writable by others, and the
//! modes a hand-run wg-exec leaves under umask 022. Each runs the real binary in a network
//! namespace of its own, with WG_EXEC_STATE_DIR in a directory of the test's.

mod support;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use support::conf::Conf;
use support::*;
use wg_exec::journal::{Journal, Record, State, Status, What, VERSION};
use wg_exec_steps::PolicyObject;

struct World {
    keys: Keys,
    ns: Netns,
    state: PathBuf,
    iface: String,
    cfg: PathBuf,
}

fn world(test: &str, tag: &str) -> Option<World> {
    if !real_environment(test) {
        return None;
    }
    let keys = Keys::new();
    let ns = Netns::new(tag);
    let iface = iface(tag);
    let (key, _) = keys.private("a");
    let cfg = keys.write(
        "a.ron",
        &Conf::new(&["192.0.2.1/24"], &key)
            .with("backend: Userspace")
            .render(),
    );
    let state = keys.dir.path().join("state");
    Some(World {
        keys,
        ns,
        state,
        iface,
        cfg,
    })
}

impl World {
    /// `wg-exec ARGS` as root in the test's namespace, under umask 022.
    fn run(&self, args: &str) -> Output {
        sh(&format!(
            "umask 022; ip netns exec {} env WG_EXEC_STATE_DIR={} {} {args}",
            self.ns.name,
            self.state.display(),
            wg_exec_bin()
        ))
    }

    /// `wg-exec ARGS` as the non-root unit user (uid 65534, ambient CAP_NET_ADMIN) in the test's
    /// namespace, under umask 022.
    fn run_as_unit(&self, args: &str) -> Output {
        let sockets = self.keys.dir.path().join("wireguard");
        sh(&as_unit_user(
            &["net_admin"],
            &sockets,
            &format!(
                "umask 022; ip netns exec {} env WG_EXEC_STATE_DIR={} {{user}} {} {args}",
                self.ns.name,
                self.state.display(),
                unit_bin(self.keys.dir.path())
            ),
        ))
    }

    fn make_state(&self, mode: u32) {
        std::fs::create_dir_all(&self.state).unwrap();
        std::fs::set_permissions(&self.state, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn journal(&self) -> PathBuf {
        self.state.join(format!("{}.ron", self.iface))
    }

    /// A file outside the state directory that reads `text` (root's, 0644).
    fn victim(&self, name: &str, text: &str) -> PathBuf {
        let p = self.keys.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// The hostile journal of the reproduction: a pre_shutdown hook that leaves a mark, a
    /// "sysctl" that is really `victim` (which reads "1") to be set to "PWNED", and a key file
    /// "generated" by up that is really `other`.
    fn planted_journal(&self, mark: &Path, victim: &Path, other: &Path) -> String {
        let j = Journal {
            version: VERSION,
            interface: self.iface.clone(),
            state: State::RollbackIncomplete,
            pid: 1,
            config: self.cfg.clone(),
            pre_shutdown: vec![format!("touch {}", mark.display())],
            post_shutdown: Vec::new(),
            records: vec![
                Record {
                    step: "generate key".into(),
                    status: Status::Done,
                    what: What::KeyFile {
                        path: other.to_path_buf(),
                        existed: false,
                    },
                },
                Record {
                    step: "policy".into(),
                    status: Status::Done,
                    what: What::Policy {
                        netns: wg_exec_steps::Netns::Current,
                        objects: vec![PolicyObject::Sysctl {
                            path: format!("../..{}", victim.display()),
                            old: "PWNED".into(),
                        }],
                    },
                },
            ],
            reload_step: None,
            boot_id: wg_exec::journal::boot_id(),
        };
        wg_exec::journal::to_text(&j).unwrap()
    }

    /// A journal as an up that found nothing to do would leave (no records).
    fn plain_journal(&self) -> String {
        let j = Journal {
            version: VERSION,
            interface: self.iface.clone(),
            state: State::Running,
            pid: 1,
            config: self.cfg.clone(),
            pre_shutdown: Vec::new(),
            post_shutdown: Vec::new(),
            records: Vec::new(),
            reload_step: None,
            boot_id: wg_exec::journal::boot_id(),
        };
        wg_exec::journal::to_text(&j).unwrap()
    }

    /// `wg-exec down IFACE --config CFG` as root.
    fn down(&self) -> Output {
        self.run(&format!(
            "down {} --config {}",
            self.iface,
            self.cfg.display()
        ))
    }

    /// `down` as root, refused: exit 1. What it said.
    fn down_refused(&self) -> String {
        let out = self.down();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        err
    }

    /// The journal `j` planted as the interface's (0600).
    fn plant(&self, j: &Journal) -> PathBuf {
        self.plant_journal(&wg_exec::journal::to_text(j).unwrap(), 0o600)
    }

    /// `text` as the interface's journal, with `mode`.
    fn plant_journal(&self, text: &str, mode: u32) -> PathBuf {
        self.write_state_file(&format!("{}.ron", self.iface), text, mode)
    }

    fn write_state_file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.state.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.state)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn a_symlink_planted_as_the_lock_is_refused_and_what_it_points_to_is_untouched() {
    let Some(w) = world("symlink_lock", "l") else {
        return;
    };
    w.make_state(0o700);
    let victim = w.victim("victim", "precious\n");
    std::os::unix::fs::symlink(&victim, w.state.join(format!("{}.lock", w.iface))).unwrap();
    let err = w.down_refused();
    assert!(
        err.contains(&format!(
            "the lock {}/{}.lock is a symbolic link: wg-exec makes none",
            w.state.display(),
            w.iface
        )),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(mode(&victim), 0o644);
}

#[test]
fn a_planted_journal_is_refused_whole_its_hook_sysctl_and_key_file_untouched() {
    let Some(w) = world("planted_journal", "j") else {
        return;
    };
    w.make_state(0o700);
    let mark = w.keys.dir.path().join("hook-ran");
    let victim = w.victim("sysctl-victim", "1");
    let other = w.victim("not-a-key", "someone's file\n");
    let text_of = w.planted_journal(&mark, &victim, &other);
    let journal = w.plant_journal(&text_of, 0o600);

    // What down would do is not shown as if it were a plan.
    let out = w.run(&format!(
        "down --print {} --config {}",
        w.iface,
        w.cfg.display()
    ));
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{err}");
    assert!(
        !stdout.contains("PWNED") && !stdout.contains("touch"),
        "{stdout}"
    );
    assert!(err.contains("is refused"), "{err}");

    let err = w.down_refused();
    assert!(
        err.contains(&format!(
            "the journal {} is refused (record 1 (generate key): the key file {} (owner uid 0, mode 0644) is not uid 0's with mode 0600: it is not a key wg-exec generated); nothing in it was acted on",
            journal.display(),
            other.display()
        )),
        "{err}"
    );
    assert!(!mark.exists(), "the planted hook ran");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "1");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "someone's file\n");
    // Kept as it is for a person to look at: neither followed nor set aside.
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), text_of);

    // The sysctl alone (no key file record) is refused for its path.
    let mut j = wg_exec::journal::parse(&text_of).unwrap();
    j.records.remove(0);
    w.plant(&j);
    let err = w.down_refused();
    assert!(
        err.contains(&format!(
            "record 1 (policy): the sysctl \"../..{}\" is not net/ipv4/conf/all/src_valid_mark, the one wg-exec sets",
            victim.display()
        )),
        "{err}"
    );
    assert!(!mark.exists(), "the planted hook ran");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "1");
}

#[test]
fn a_state_directory_of_another_user_is_refused_for_changes_and_only_read_with_a_warning() {
    let Some(w) = world("foreign_state", "f") else {
        return;
    };
    w.make_state(0o700);
    let journal = w.plant_journal(&w.plain_journal(), 0o600);
    must(&format!("chown -R 65534:65534 {}", w.state.display()));
    let before = w.entries();

    let err = w.down_refused();
    assert!(
        err.contains(&format!(
            "the state directory {} belongs to uid 65534",
            w.state.display()
        )) && err.contains("mode 0700, not to uid 0")
            && err.contains(&format!("chown 0 {}", w.state.display())),
        "{err}"
    );
    assert_eq!(
        w.entries(),
        before,
        "something changed in the state directory"
    );
    assert!(journal.exists());

    // Read-only commands read it, with the warning, and change nothing.
    let out = w.run(&format!(
        "down --print {} --config {}",
        w.iface,
        w.cfg.display()
    ));
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: the state directory") && err.contains("read only"),
        "{err}"
    );
    let out = w.run(&format!("status {}", w.iface));
    let err = text(&out.stderr);
    assert!(err.contains("warning: the state directory"), "{err}");
    assert_eq!(w.entries(), before);
}

#[test]
fn a_group_writable_directory_or_journal_is_refused() {
    let Some(w) = world("writable_state", "g") else {
        return;
    };
    w.make_state(0o770);
    let err = w.down_refused();
    assert!(
        err.contains(&format!(
            "the state directory {} (owner uid 0 (root)) has mode 0770: group or others may write it",
            w.state.display()
        )),
        "{err}"
    );
    assert!(w.entries().is_empty(), "{:?}", w.entries());

    std::fs::set_permissions(&w.state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let journal = w.plant_journal(&w.plain_journal(), 0o664);
    let err = w.down_refused();
    assert!(
        err.contains(&format!(
            "the state file {} (owner uid 0 (root)) has mode 0664: group or others may write it",
            journal.display()
        )),
        "{err}"
    );
    assert!(journal.exists());
}

#[test]
fn interface_names_that_are_another_interfaces_state_files_are_refused() {
    let Some(w) = world("state_names", "n") else {
        return;
    };
    w.make_state(0o700);
    let record = w.write_state_file("x.applied.ron", "kept", 0o600);
    let out = w.run(&format!("down x.applied --config {}", w.cfg.display()));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`x.applied` ends in `.applied`: its journal would be the state file of the interface `x`"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&record).unwrap(), "kept");
}

#[test]
fn under_umask_022_the_state_is_0700_and_0600_as_root_and_as_the_unit_user() {
    let Some(w) = world("state_modes", "m") else {
        return;
    };
    let _s = SocketGuard(w.iface.clone());
    let up = format!("-v up {} --config {}", w.iface, w.cfg.display());
    let down = format!("down {} --config {}", w.iface, w.cfg.display());
    let record = w.state.join(format!("{}.applied.json", w.iface));
    ok(w.run(&up));
    assert_eq!(mode(&w.state), 0o700);
    assert_eq!(mode(&w.journal()), 0o600);
    assert_eq!(mode(&record), 0o600);
    ok(w.run(&down));
    assert!(w.entries().is_empty(), "{:?}", w.entries());

    // The unit user's own directory, made by hand (mkdir under umask 022: 0755), is taken and
    // tightened; its files are 0600.
    std::fs::remove_dir(&w.state).unwrap();
    must(&format!(
        "umask 022; mkdir -p {0} {1} && chown -R 65534:65534 {2}",
        w.state.display(),
        w.keys.dir.path().join("wireguard").display(),
        w.keys.dir.path().display()
    ));
    let out = w.run_as_unit(&up);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&w.state), 0o700);
    assert_eq!(mode(&w.journal()), 0o600);
    assert_eq!(mode(&record), 0o600);
    assert_eq!(std::fs::metadata(w.journal()).unwrap().uid(), 65534);

    // The daemon, running as that user, edits the journal: the unit's down refuses it and
    // writes nothing outside; put back, it is followed.
    let victim = w.victim("sysctl-victim", "1");
    let good = std::fs::read_to_string(w.journal()).unwrap();
    let mut j = wg_exec::journal::parse(&good).unwrap();
    j.records.push(Record {
        step: "policy".into(),
        status: Status::Done,
        what: What::Policy {
            netns: wg_exec_steps::Netns::Current,
            objects: vec![PolicyObject::Sysctl {
                path: format!("../..{}", victim.display()),
                old: "0".into(),
            }],
        },
    });
    let planted = wg_exec::journal::to_text(&j).unwrap();
    must(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'cat > {}' <<'EOF'\n{planted}\nEOF",
        w.journal().display()
    ));
    let out = w.run_as_unit(&down);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is refused (record"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "1");
    assert!(w.ns.has_link(&w.iface), "the refused down acted");
    must(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'cat > {}' <<'EOF'\n{good}\nEOF",
        w.journal().display()
    ));
    let out = w.run_as_unit(&down);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!w.ns.has_link(&w.iface));
    assert!(w.entries().is_empty(), "{:?}", w.entries());
}

#[test]
fn a_record_whose_namespace_leaves_run_netns_is_refused_and_nothing_is_opened() {
    let Some(w) = world("record_netns", "r") else {
        return;
    };
    w.make_state(0o700);
    w.plant_journal(&w.plain_journal(), 0o600);
    let fifo = w.keys.dir.path().join("fifo");
    must(&format!("mkfifo -m 0600 {}", fifo.display()));
    let text_of = std::fs::read_to_string(&w.cfg).unwrap();
    let (cfg, _) = wg_exec::config::parse(
        &w.iface,
        &w.cfg,
        &text_of,
        &wg_exec::config::RouteTables::builtin(),
    )
    .unwrap();
    let record = format!("{}.applied.json", w.iface);
    // Read from a directory wg-exec trusts, and (the unit user's, say) from one it reads with a
    // warning: either way the record is refused before a file it names is opened (a FIFO
    // would hang an open; a device could be armed by one).
    for (name, owner) in [
        (format!("../..{}", fifo.display()), 0),
        (fifo.display().to_string(), 65534),
    ] {
        let mut applied = wg_exec::journal::applied::Applied::of(&cfg);
        applied.interface_namespace = wg_exec_steps::Netns::Named(name.clone());
        w.write_state_file(
            &record,
            &String::from_utf8(wg_exec::journal::applied::to_bytes(&applied).unwrap()).unwrap(),
            0o600,
        );
        must(&format!("chown -R {owner}:{owner} {}", w.state.display()));
        let out = sh(&format!(
            "ip netns exec {} env WG_EXEC_STATE_DIR={} timeout -s KILL 30 {} status {}",
            w.ns.name,
            w.state.display(),
            wg_exec_bin(),
            w.iface
        ));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{name}: {err}");
        assert!(
            err.contains(&format!(
                "{} is not one wg-exec wrote: interface_namespace: {name:?} is not a namespace name",
                w.state.join(&record).display()
            )),
            "{err}"
        );
    }
}

#[test]
fn a_journal_naming_a_configuration_in_the_state_directory_or_writable_by_others_is_refused() {
    let Some(w) = world("journal_config", "c") else {
        return;
    };
    w.make_state(0o700);
    let mark = w.keys.dir.path().join("hook-ran");
    let evil = std::fs::read_to_string(&w.cfg).unwrap().replacen(
        "Interface(",
        &format!(
            "Interface(\n    pre_setup: [\"touch {0}\"],\n    post_setup: [\"touch {0}\"],\n    pre_shutdown: [\"touch {0}\"],",
            mark.display()
        ),
        1,
    );
    let in_state = w.write_state_file("evil.ron", &evil, 0o600);
    let foreign = w.victim("foreign.ron", &evil);
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o646)).unwrap();
    let journal = w.journal();
    for (config, reason) in [
        (
            in_state.clone(),
            format!(
                "the configuration {} is in the state directory {}: wg-exec writes none there",
                in_state.display(),
                w.state.display()
            ),
        ),
        (
            foreign.clone(),
            format!(
                "the configuration {} (owner uid 0, mode 0646) may be written by group or others: its hooks are not run",
                foreign.display()
            ),
        ),
    ] {
        let mut j = wg_exec::journal::parse(&w.plain_journal()).unwrap();
        j.config = config;
        w.plant(&j);
        let err = w.down_refused();
        assert!(
            err.contains(&format!(
                "the journal {} is refused ({reason}",
                journal.display()
            )),
            "{err}"
        );
        // Reload and status do not take the configuration it names.
        let out = w.run(&format!("reload {}", w.iface));
        assert!(!out.status.success(), "{}", text(&out.stderr));
        let out = w.run(&format!("status {}", w.iface));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(err.contains(&reason), "{err}");
        assert!(!mark.exists(), "a hook of the planted configuration ran");
    }
}
