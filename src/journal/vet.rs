//! The check of a journal against what wg-exec itself could have written for its interface,
//! before anything in it runs: `down` follows the journal with wg-exec's capabilities, so a
//! journal that names another link, another sysctl, a value no kernel takes, a file that is not
//! a key wg-exec generated, or a namespace path that leaves /run/netns is refused as a whole
//! (its hooks with it), never followed in part.

use super::{Journal, What};
use std::path::{Component, Path};
use wg_exec_steps::policy::{
    nft_table_name, PolicyObject, FWMARK_PRIORITY, SRC_VALID_MARK, SUPPRESS_PRIORITY,
};
use wg_exec_steps::{Netns, NftTable, PolicyRule};

/// The routing tables a full tunnel never uses: unspec, default, main, local.
const RESERVED_TABLES: [u32; 4] = [0, 253, 254, 255];

/// Why `j`, read from `iface`'s journal, is not one wg-exec wrote; Ok when every record is.
pub fn vet(j: &Journal, iface: &str) -> Result<(), String> {
    if j.interface != iface {
        return Err(format!(
            "it is the journal of `{}`, not of `{iface}`",
            j.interface
        ));
    }
    let table = j.full_tunnel_table();
    for (i, r) in j.records.iter().enumerate() {
        let at = |m: String| format!("record {} ({}): {m}", i + 1, r.step);
        record(&r.what, iface, table, &j.records).map_err(at)?;
    }
    Ok(())
}

/// A namespace a record may hold: the current one, init's, or a name [`namespace_name`]
/// accepts.
pub fn netns(ns: &Netns) -> Result<(), String> {
    match ns {
        Netns::Current | Netns::Init => Ok(()),
        Netns::Named(n) => namespace_name(n),
    }
}

/// Why `name` is not the name of a namespace in /run/netns (one file there, as `ip netns add`
/// makes): empty, `.`, `..`, with a `/` (an absolute name would replace /run/netns, `..` walk
/// out of it) or a NUL, or longer than a file name. A name from a configuration, a journal or
/// a record passes this before any file is opened by it.
pub fn namespace_name(name: &str) -> Result<(), String> {
    match name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\0')
        || name.len() > 255
    {
        true => Err(format!("{name:?} is not a namespace name")),
        false => Ok(()),
    }
}

fn link_name(name: &str, iface: &str) -> Result<(), String> {
    match name == iface {
        true => Ok(()),
        false => Err(format!("it names the link `{name}`, not `{iface}`")),
    }
}

fn record(
    what: &What,
    iface: &str,
    table: Option<u32>,
    all: &[super::Record],
) -> Result<(), String> {
    match what {
        What::Link {
            name,
            netns: ns,
            userspace_pids,
        } => {
            link_name(name, iface)?;
            netns(ns)?;
            if let Some(p) = userspace_pids.iter().find(|p| **p <= 1) {
                return Err(format!("{p} is no userspace process wg-exec started"));
            }
            Ok(())
        }
        What::Move { name, from, to } => {
            link_name(name, iface)?;
            netns(from)?;
            netns(to)
        }
        What::KeyFile { path, existed } => key_file(path, *existed, all),
        What::Addresses { netns: ns, .. } | What::Routes { netns: ns, .. } => netns(ns),
        What::Policy { netns: ns, objects } => {
            netns(ns)?;
            objects.iter().try_for_each(|o| policy(o, iface, table))
        }
        // The backend is typed: a name wg-exec does not know does not parse.
        What::Dns {
            name, netns: ns, ..
        } => {
            link_name(name, iface)?;
            netns(ns)
        }
        What::Nothing => Ok(()),
    }
}

fn policy(o: &PolicyObject, iface: &str, table: Option<u32>) -> Result<(), String> {
    match o {
        PolicyObject::Rule(PolicyRule {
            priority,
            table: t,
            fwmark,
            invert,
            suppress_prefixlength,
            ..
        }) => {
            let suppress = *priority == SUPPRESS_PRIORITY
                && *t == 254
                && fwmark.is_none()
                && !invert
                && *suppress_prefixlength == Some(0);
            let mark = *priority == FWMARK_PRIORITY
                && *fwmark == Some(*t)
                && *invert
                && suppress_prefixlength.is_none()
                && !RESERVED_TABLES.contains(t)
                // One full tunnel, one table: a second mark rule would be another
                // interface's, which down would remove. (None: every mark rule was undone.)
                && table.is_none_or(|ft| ft == *t);
            match suppress || mark {
                true => Ok(()),
                false => Err(format!(
                    "the rule priority {priority} table {t} is not one of a full tunnel's"
                )),
            }
        }
        PolicyObject::Unreachable { dst, table: t } => {
            if dst.prefix_len() != 0 || dst.addr() != dst.network() {
                return Err(format!(
                    "the unreachable route {dst} is not a default route"
                ));
            }
            if RESERVED_TABLES.contains(t) || table.is_some_and(|ft| ft != *t) {
                return Err(format!(
                    "the unreachable route's table {t} is not the full tunnel's"
                ));
            }
            Ok(())
        }
        PolicyObject::Nft(NftTable { family, name }) => {
            let mine = nft_table_name(iface);
            match (family.as_str(), name == &mine) {
                ("ip" | "ip6", true) => Ok(()),
                _ => Err(format!(
                    "the nftables table {family} {name} is not {mine}, the one of `{iface}`"
                )),
            }
        }
        PolicyObject::Sysctl { path, old } => {
            if path != SRC_VALID_MARK {
                return Err(format!(
                    "the sysctl {path:?} is not {SRC_VALID_MARK}, the one wg-exec sets"
                ));
            }
            match old.as_str() {
                "0" | "1" => Ok(()),
                _ => Err(format!("{old:?} is not a value of {SRC_VALID_MARK}")),
            }
        }
    }
}

/// The configuration file a journal names (`config`): reload and status read it, and run its
/// hooks, when no --config is given. It must be an absolute path (up records one), not in the
/// state directory `state_dir` (whoever can write a journal there could write a configuration
/// beside it), and, when it is there, a regular file (after symbolic links) that group and
/// others cannot write. (`..` is allowed: up records `--config ../wg0.ron` as given, after the
/// working directory.) Its owner is not checked: root may run up with another user's file
/// (tests/matrix.rs does), and down, which never reads it, must not be refused for that.
pub fn config(path: &Path, state_dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if !path.is_absolute() {
        return Err(format!(
            "the configuration {} is not an absolute path",
            path.display()
        ));
    }
    let dir = std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let by_name = !path.components().any(|c| c == Component::ParentDir) && path.starts_with(&dir);
    let resolved = std::fs::canonicalize(&dir)
        .is_ok_and(|d| std::fs::canonicalize(path).is_ok_and(|p| p.starts_with(&d)));
    if by_name || resolved {
        return Err(format!(
            "the configuration {} is in the state directory {}: wg-exec writes none there",
            path.display(),
            state_dir.display()
        ));
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot read the configuration {}: {e}",
                path.display()
            ))
        }
    };
    let mode = meta.mode() & 0o7777;
    if !meta.file_type().is_file() {
        return Err(format!(
            "the configuration {} is not a regular file",
            path.display()
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "the configuration {} (owner uid {}, mode {mode:04o}) may be written by group or others: its hooks are not run",
            path.display(),
            meta.uid()
        ));
    }
    Ok(())
}

/// An absolute path without `.` or `..`.
fn plain(path: &Path) -> bool {
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// A key file record. One that existed before is never touched; one wg-exec generated is
/// removed by a recovery, so it must be an absolute, plain path, and when it is there it must be
/// what wg-exec writes: a regular file of the effective user, 0600, holding one key.
fn key_file(path: &Path, existed: bool, all: &[super::Record]) -> Result<(), String> {
    if !plain(path) {
        return Err(format!(
            "the key file {} is not an absolute path without `.` or `..`",
            path.display()
        ));
    }
    let key_files = all
        .iter()
        .filter(|r| matches!(r.what, What::KeyFile { .. }))
        .count();
    if key_files > 1 {
        return Err(format!(
            "{key_files} key file records; an up generates one key at most"
        ));
    }
    if existed {
        return Ok(());
    }
    generated_key(path)
}

/// Whether the file at `path` (when there is one) looks like a key wg-exec generated.
fn generated_key(path: &Path) -> Result<(), String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read the key file {}: {e}", path.display())),
    };
    let me = nix::unistd::geteuid().as_raw();
    let not = |what: &str| {
        Err(format!(
            "the key file {} (owner uid {}, mode {:04o}) {what}: it is not a key wg-exec generated",
            path.display(),
            meta.uid(),
            meta.mode() & 0o7777
        ))
    };
    if !meta.file_type().is_file() || meta.nlink() != 1 {
        return not("is not a regular file with one name");
    }
    if meta.uid() != me || meta.mode() & 0o077 != 0 {
        return not(&format!("is not uid {me}'s with mode 0600"));
    }
    let mut text = String::new();
    // The file checked above, not one put in its place since.
    let read = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .and_then(|f| {
            let now = f.metadata()?;
            match (now.ino(), now.dev()) == (meta.ino(), meta.dev()) {
                true => f.take(64).read_to_string(&mut text),
                false => Err(std::io::Error::other("replaced while read")),
            }
        });
    let key = read
        .ok()
        .and_then(|_| wg_exec_steps::Key::from_base64(&text, true).ok());
    zeroize::Zeroize::zeroize(&mut text);
    match key {
        Some(_) => Ok(()),
        None => not("does not hold one WireGuard key"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Record, State, Status, VERSION};
    use super::*;

    fn journal(what: Vec<What>) -> Journal {
        Journal {
            version: VERSION,
            interface: "wg0".into(),
            state: State::RollbackIncomplete,
            pid: 1,
            config: "/etc/wg-exec/wg0.ron".into(),
            pre_shutdown: Vec::new(),
            post_shutdown: Vec::new(),
            records: what
                .into_iter()
                .map(|what| Record {
                    step: "s".into(),
                    status: Status::Done,
                    what,
                })
                .collect(),
            reload_step: None,
            boot_id: String::new(),
        }
    }

    fn refused(what: What) -> String {
        vet(&journal(vec![what]), "wg0").unwrap_err()
    }

    #[test]
    fn what_wg_exec_writes_passes() {
        let j = journal(vec![
            What::Link {
                name: "wg0".into(),
                netns: Netns::Named("a".into()),
                userspace_pids: vec![4242],
            },
            What::Move {
                name: "wg0".into(),
                from: Netns::Named("a".into()),
                to: Netns::Init,
            },
            What::KeyFile {
                path: "/nonexistent/wg0.key".into(),
                existed: false,
            },
            What::Policy {
                netns: Netns::Current,
                objects: vec![
                    PolicyObject::Rule(PolicyRule {
                        v6: false,
                        priority: SUPPRESS_PRIORITY,
                        table: 254,
                        fwmark: None,
                        invert: false,
                        suppress_prefixlength: Some(0),
                        other: false,
                    }),
                    PolicyObject::Rule(PolicyRule {
                        v6: false,
                        priority: FWMARK_PRIORITY,
                        table: 51820,
                        fwmark: Some(51820),
                        invert: true,
                        suppress_prefixlength: None,
                        other: false,
                    }),
                    PolicyObject::Unreachable {
                        dst: "::/0".parse().unwrap(),
                        table: 51820,
                    },
                    PolicyObject::Nft(NftTable {
                        family: "ip".into(),
                        name: nft_table_name("wg0"),
                    }),
                    PolicyObject::Sysctl {
                        path: SRC_VALID_MARK.into(),
                        old: "0".into(),
                    },
                ],
            },
            What::Dns {
                name: "wg0".into(),
                netns: Netns::Current,
                backend: Some(wg_exec_steps::DnsBackend::Resolvconf),
            },
        ]);
        vet(&j, "wg0").unwrap();
    }

    #[test]
    fn what_wg_exec_never_writes_is_refused_with_the_reason() {
        assert_eq!(
            vet(&journal(Vec::new()), "wg1").unwrap_err(),
            "it is the journal of `wg0`, not of `wg1`"
        );
        let e = refused(What::Policy {
            netns: Netns::Current,
            objects: vec![PolicyObject::Sysctl {
                path: "../../../etc/passwd".into(),
                old: "0".into(),
            }],
        });
        assert!(e.contains("is not net/ipv4/conf/all/src_valid_mark"), "{e}");
        let e = refused(What::Policy {
            netns: Netns::Current,
            objects: vec![PolicyObject::Sysctl {
                path: SRC_VALID_MARK.into(),
                old: "PWNED".into(),
            }],
        });
        assert!(e.contains("\"PWNED\" is not a value"), "{e}");
        let e = refused(What::Link {
            name: "eth0".into(),
            netns: Netns::Current,
            userspace_pids: Vec::new(),
        });
        assert_eq!(e, "record 1 (s): it names the link `eth0`, not `wg0`");
        assert!(refused(What::Link {
            name: "wg0".into(),
            netns: Netns::Current,
            userspace_pids: vec![1],
        })
        .contains("1 is no userspace process"));
        assert!(refused(What::Move {
            name: "wg0".into(),
            from: Netns::Named("../../proc/1/ns/net".into()),
            to: Netns::Current,
        })
        .contains("is not a namespace name"));
        assert!(refused(What::KeyFile {
            path: "/etc/../etc/shadow".into(),
            existed: false,
        })
        .contains("without `.` or `..`"));
        assert!(refused(What::Policy {
            netns: Netns::Current,
            objects: vec![PolicyObject::Rule(PolicyRule {
                v6: false,
                priority: 32766,
                table: 254,
                fwmark: None,
                invert: false,
                suppress_prefixlength: None,
                other: false,
            })],
        })
        .contains("not one of a full tunnel's"));
        assert!(refused(What::Policy {
            netns: Netns::Current,
            objects: vec![PolicyObject::Nft(NftTable {
                family: "inet".into(),
                name: "filter".into(),
            })],
        })
        .contains("is not wg-exec-wg0"));
        // A backend wg-exec does not know is not even a journal.
        let text = super::super::to_text(&journal(vec![What::Dns {
            name: "wg0".into(),
            netns: Netns::Current,
            backend: None,
        }]))
        .unwrap();
        let e = super::super::parse(&text.replace("backend: \"\"", "backend: \"/bin/sh\""))
            .unwrap_err();
        assert!(e.contains("\"/bin/sh\" is no DNS backend"), "{e}");
        // Nor is an unreachable route that is no network, or one that is no default route.
        let unreachable = |dst: &str| {
            let text = super::super::to_text(&journal(vec![What::Policy {
                netns: Netns::Current,
                objects: vec![PolicyObject::Unreachable {
                    dst: "::/0".parse().unwrap(),
                    table: 51820,
                }],
            }]))
            .unwrap();
            let text = text.replace("dst: \"::/0\"", &format!("dst: \"{dst}\""));
            super::super::parse(&text).map(|j| vet(&j, "wg0"))
        };
        assert!(unreachable("/etc/passwd").is_err());
        assert!(unreachable("::/0").unwrap().is_ok());
        assert!(unreachable("0.0.0.0/0").unwrap().is_ok());
        let e = unreachable("192.0.2.0/24").unwrap().unwrap_err();
        assert!(
            e.contains("the unreachable route 192.0.2.0/24 is not a default route"),
            "{e}"
        );
        let e = unreachable("192.0.2.1/0").unwrap().unwrap_err();
        assert!(e.contains("is not a default route"), "{e}");
    }

    #[test]
    fn a_mark_rule_of_another_table_than_the_full_tunnels_is_refused() {
        let mark = |table| {
            PolicyObject::Rule(PolicyRule {
                v6: false,
                priority: FWMARK_PRIORITY,
                table,
                fwmark: Some(table),
                invert: true,
                suppress_prefixlength: None,
                other: false,
            })
        };
        let policy = |objects| What::Policy {
            netns: Netns::Current,
            objects,
        };
        // Both families' rules in the one table pass.
        vet(
            &journal(vec![policy(vec![mark(51820), mark(51820)])]),
            "wg0",
        )
        .unwrap();
        // Another interface's rule beside this one's, in the same record or another.
        let e = vet(
            &journal(vec![policy(vec![mark(51820), mark(51821)])]),
            "wg0",
        )
        .unwrap_err();
        assert_eq!(
            e,
            format!(
                "record 1 (s): the rule priority {FWMARK_PRIORITY} table 51821 is not one of a full tunnel's"
            )
        );
        let e = vet(
            &journal(vec![policy(vec![mark(51820)]), policy(vec![mark(51821)])]),
            "wg0",
        )
        .unwrap_err();
        assert!(e.starts_with("record 2 (s): the rule priority"), "{e}");
        assert!(e.contains("table 51821 is not one of"), "{e}");
    }

    #[test]
    fn a_recorded_configuration_must_be_outside_the_state_directory_and_not_writable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let good = dir.path().join("wg0.ron");
        std::fs::write(&good, "Interface()").unwrap();
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o644)).unwrap();
        config(&good, &state).unwrap();
        // One not there (any more) is not read.
        config(&dir.path().join("gone.ron"), &state).unwrap();
        // As up records `--config ../wg0.ron` run in the state directory.
        config(&state.join("../wg0.ron"), &state).unwrap();
        let e = config(Path::new("wg0.ron"), &state).unwrap_err();
        assert_eq!(e, "the configuration wg0.ron is not an absolute path");
        // In the state directory: by its name, through `..` or through a symbolic link.
        let planted = state.join("evil.ron");
        std::fs::write(&planted, "Interface()").unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.ron");
        std::os::unix::fs::symlink(&planted, &link).unwrap();
        for p in [
            planted.clone(),
            state.join("../state/evil.ron"),
            link,
            state.join("not-yet.ron"),
        ] {
            let e = config(&p, &state).unwrap_err();
            assert!(e.contains("is in the state directory"), "{e}");
        }
        // Writable by others, or not a file.
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = config(&good, &state).unwrap_err();
        assert!(
            e.contains("mode 0666") && e.contains("its hooks are not run"),
            "{e}"
        );
        let e = config(dir.path(), &state).unwrap_err();
        assert!(e.contains("is not a regular file"), "{e}");
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o664)).unwrap();
        let e = config(&good, &state).unwrap_err();
        assert!(
            e.contains("mode 0664) may be written by group or others"),
            "{e}"
        );
    }

    #[test]
    fn a_generated_key_file_must_look_like_one() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("precious");
        std::fs::write(&other, "1\n").unwrap();
        let e = refused(What::KeyFile {
            path: other.clone(),
            existed: false,
        });
        assert!(e.contains("it is not a key wg-exec generated"), "{e}");
        let key = dir.path().join("wg0.key");
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key)
                .unwrap();
            std::io::Write::write_all(&mut f, b"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n")
                .unwrap();
        }
        vet(
            &journal(vec![What::KeyFile {
                path: key,
                existed: false,
            }]),
            "wg0",
        )
        .unwrap();
    }
}
