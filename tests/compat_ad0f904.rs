//! A journal and a record written by wg-exec at ad0f904 (the format before the journal stored
//! the steps' own vocabulary): tests/fixtures/ad0f904/ holds the files that version's code wrote
//! for an up of [`CONFIG`] on the fake kernel (a full tunnel moved to the init namespace, DNS
//! through resolvconf, a generated key, a peer by host name). They still load, say in typed
//! values exactly what today's up records, and `down` removes exactly what they say.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use wg_exec::config::{self, RouteTables};
use wg_exec::executor::{self, NoWatch};
use wg_exec::journal::{self, Journal, JournalFile, State, What};
use wg_exec::plan;
use wg_exec_steps::fake::FakeKernel;
use wg_exec_steps::policy::PolicyObject;
use wg_exec_steps::{DnsBackend, Netns, NftTable, PolicyRule};

const CONFIG: &str = r#"(
    ips: ["198.18.0.2/24", "2001:db8:1::2/64"],
    private_key_file: "/var/lib/wg-exec-compat/wg0.key",
    generate_private_key_file: true,
    interface_namespace: "init",
    table: "auto",
    mtu: 1380,
    listen_port: 51820,
    dns: ["192.0.2.53", "2001:db8::53", "corp.example", "~lab.example", "~."],
    peers: [
        (public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", name: "gateway", allowed_ips: ["0.0.0.0/0", "::/0"], endpoint: "192.0.2.1:51820"),
        (public_key: "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=", allowed_ips: ["198.51.100.0/24"], endpoint: "[2001:db8::9]:51821"),
        (public_key: "5L8teLQBu0S1IpyF5OiJAM4CKbR08xyC/J4kjorkMGg=", allowed_ips: ["203.0.113.0/24"], endpoint: "peer.wg-exec.test:51822", dynamic_endpoint_refresh_seconds: 60),
    ],
)"#;

fn cfg() -> config::Config {
    config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        CONFIG,
        &RouteTables::builtin(),
    )
    .unwrap()
    .0
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ad0f904")
        .join(name)
}

/// The fixture copied into a state directory wg-exec trusts (a fresh 0700 one, the files 0600).
fn planted(dir: &Path, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let to = dir.join(name);
    std::fs::copy(fixture(name), &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    to
}

/// A kernel as the fixture's up found it (the init namespace's own things included).
fn kernel() -> FakeKernel {
    let mut k = FakeKernel::new();
    k.dns_backend = Some(DnsBackend::Resolvconf);
    k.hosts
        .insert("peer.wg-exec.test".into(), "203.0.113.7".parse().unwrap());
    // Another tool's rule and firewall table: down must leave them.
    k.state.rules.insert((
        Netns::Init,
        PolicyRule {
            v6: false,
            priority: 100,
            table: 254,
            fwmark: None,
            invert: false,
            suppress_prefixlength: Some(0),
            other: false,
        },
    ));
    k.state.nft.insert(
        (
            Netns::Init,
            NftTable {
                family: "ip".into(),
                name: "filter".into(),
            },
        ),
        "create table ip filter\n".into(),
    );
    k
}

#[test]
fn a_journal_written_by_ad0f904_loads_typed_and_says_what_todays_up_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = planted(dir.path(), "wg0.ron");
    let old = journal::load(&path).unwrap().unwrap();
    assert_eq!(old.state, State::Running);
    assert_eq!(
        old.links(),
        vec![("wg0".into(), Netns::Current, Netns::Init)]
    );
    assert_eq!(old.moved(), Some((Netns::Current, Netns::Init)));
    assert_eq!(
        old.dns(),
        vec![("wg0".into(), Netns::Init, Some(DnsBackend::Resolvconf))]
    );
    assert_eq!(old.full_tunnel_table(), Some(51820));
    let policy = old.policy();
    assert_eq!(policy.len(), 3, "{policy:?}");
    assert!(policy.iter().all(|(ns, _)| *ns == Netns::Init));
    let objects: Vec<String> = policy
        .iter()
        .flat_map(|(_, o)| o.iter().map(|o| o.to_string()))
        .collect();
    assert_eq!(objects.len(), 7, "{objects:?}");
    assert!(policy[2].1.contains(&PolicyObject::Sysctl {
        path: "net/ipv4/conf/all/src_valid_mark".into(),
        old: "0".into(),
    }));
    assert!(old.records.iter().any(|r| r.what
        == What::Addresses {
            netns: Netns::Init,
            addrs: vec![
                "198.18.0.2/24".parse().unwrap(),
                "2001:db8:1::2/64".parse().unwrap()
            ],
        }));

    // Today's up of the same configuration records the same things, in the same order.
    let new_dir = tempfile::tempdir().unwrap();
    let mut k = kernel();
    let mut jfile = JournalFile {
        path: new_dir.path().join("wg0.ron"),
        journal: Journal::for_up(&cfg()),
    };
    executor::up(
        &mut plan::up(&cfg()),
        &mut k,
        &AtomicBool::new(false),
        &mut jfile,
    )
    .unwrap();
    let steps = |j: &Journal| -> Vec<(String, What)> {
        j.records
            .iter()
            .map(|r| (r.step.clone(), r.what.clone()))
            .collect()
    };
    assert_eq!(steps(&jfile.journal), steps(&old));

    // Written again by today's wg-exec, it reads back the same, in the same shape.
    let mut again = JournalFile {
        path: dir.path().join("wg0.ron"),
        journal: old.clone(),
    };
    again.save().unwrap();
    let text = std::fs::read_to_string(&again.path).unwrap();
    assert!(
        text.contains("Rule(\n                        v6: false,"),
        "{text}"
    );
    assert!(text.contains("backend: \"resolvconf\""), "{text}");
    assert!(text.contains("to: Some(\"init\")"), "{text}");
    let back = journal::load(&again.path).unwrap().unwrap();
    assert_eq!(back.records, old.records);
}

#[test]
fn down_from_a_journal_written_by_ad0f904_removes_exactly_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let old = journal::load(&planted(dir.path(), "wg0.ron"))
        .unwrap()
        .unwrap();
    let mut k = kernel();
    let before = k.state.clone();
    executor::up(
        &mut plan::up(&cfg()),
        &mut k,
        &AtomicBool::new(false),
        &mut NoWatch,
    )
    .unwrap();
    assert_ne!(k.state, before);
    // The generated key stays: down of a complete up keeps it for the next up.
    let mut expected = before;
    expected.files = k.state.files.clone();
    assert_eq!(
        expected.files.keys().collect::<Vec<_>>(),
        [Path::new("/var/lib/wg-exec-compat/wg0.key")]
    );
    let failures = executor::down(
        &mut plan::down_from_journal(&old, true),
        &mut k,
        &mut NoWatch,
    );
    assert!(failures.is_empty(), "{failures:?}");
    // The link, its rules, firewall tables, sysctl and DNS entry are gone; the other tool's
    // rule and table are not.
    assert_eq!(k.state, expected);
}

#[test]
fn a_record_written_by_ad0f904_is_read_typed_and_replaced_on_the_next_write() {
    use wg_exec::journal::applied::{self, Applied, Dns, FullTunnelShape, PublicKey};
    let dir = tempfile::tempdir().unwrap();
    planted(dir.path(), "wg0.applied.ron");
    let path = applied::path_for(dir.path(), "wg0");
    assert!(!path.exists());
    let old = applied::load(&path).unwrap().unwrap();
    // What today's up records for the same configuration, typed.
    let c = cfg();
    let mut today = Applied::of(&c);
    today.full_tunnel_table = Some(51820);
    let peer =
        wg_exec_steps::Key::from_base64("5L8teLQBu0S1IpyF5OiJAM4CKbR08xyC/J4kjorkMGg=", false)
            .unwrap();
    today.set_resolved([(peer.clone(), "203.0.113.7:51822".parse().unwrap())]);
    assert_eq!(old, today);
    assert_eq!(
        old.endpoints[&PublicKey::of(&peer)],
        wg_exec_steps::Endpoint {
            host: "peer.wg-exec.test".into(),
            port: 51822
        }
    );
    assert_eq!(
        old.full_tunnel,
        Some(FullTunnelShape {
            v4: true,
            v6: true,
            ipv6_leak_protection: true,
            fwmark: None,
            addresses: vec![
                "198.18.0.2/24".parse().unwrap(),
                "2001:db8:1::2/64".parse().unwrap()
            ],
        })
    );
    assert_eq!(
        old.dns,
        Dns {
            servers: vec![
                "192.0.2.53".parse().unwrap(),
                "2001:db8::53".parse().unwrap()
            ],
            search: vec!["corp.example".into()],
            routing: vec!["lab.example".into(), ".".into()],
        }
    );
    // Nothing a reload cannot change differs: the old record is followed as it is.
    assert!(wg_exec::plan::reload::not_live(&c, &old).is_empty());
    // The next write replaces it with the typed record; the old file goes.
    applied::save(&path, &old).unwrap();
    assert!(path.exists());
    assert!(!dir.path().join("wg0.applied.ron").exists());
    assert_eq!(applied::load(&path).unwrap().unwrap(), old);
    // Removing the record removes an old one beside it too.
    planted(dir.path(), "wg0.applied.ron");
    applied::remove(&path).unwrap();
    assert!(!path.exists() && !dir.path().join("wg0.applied.ron").exists());
}
