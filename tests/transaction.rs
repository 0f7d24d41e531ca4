//! The transaction protocol of up and reload (src/journal/transaction.rs) on the fake kernel:
//! what up decides about an earlier run, what the journal and the records say after an up, a
//! reload, a failed one and an interrupted one, and which endpoints a reload records.

mod support;
use std::cell::Cell;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use support::rich::{fresh_kernel, rich, RICH};
use wg_exec::config::{self, RouteTables};
use wg_exec::executor::{self, NoWatch};
use wg_exec::faults::Faults;
use wg_exec::journal::applied::{self, Applied, PublicKey};
use wg_exec::journal::transaction::{self, before_up, Before};
use wg_exec::journal::{self, Journal, JournalFile, Record, State, Status, What};
use wg_exec::outcome::Outcome;
use wg_exec::plan::{self, reload};
use wg_exec_steps::fake::FakeKernel;
use wg_exec_steps::{DnsBackend, KernelError, Key, Netns};

const FIRST: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

fn parse(text: &str) -> config::Config {
    config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        text,
        &RouteTables::builtin(),
    )
    .expect("valid")
    .0
}

fn key(b64: &str) -> Key {
    Key::from_base64(b64, false).unwrap()
}

fn pk(b64: &str) -> PublicKey {
    PublicKey::of(&key(b64))
}

#[test]
fn before_an_up_table() {
    let dns = Record {
        step: "dns".into(),
        status: Status::Done,
        what: What::Dns {
            name: "wg0".into(),
            netns: Netns::Current,
            backend: Some(DnsBackend::Resolvconf),
        },
    };
    // journal state (None: no journal), DNS recorded, link present -> decision, link asked
    let rows = [
        (None, false, true, Before::Nothing, false),
        (
            Some(State::Starting),
            false,
            true,
            Before::Unfinished,
            false,
        ),
        (
            Some(State::RollbackIncomplete),
            false,
            false,
            Before::Unfinished,
            false,
        ),
        (
            Some(State::Running),
            false,
            true,
            Before::AlreadyUp { reloading: false },
            true,
        ),
        (
            Some(State::Reloading),
            false,
            true,
            Before::AlreadyUp { reloading: true },
            true,
        ),
        (
            Some(State::Running),
            false,
            false,
            Before::LinkGone { outlives: false },
            true,
        ),
        (
            Some(State::Running),
            true,
            false,
            Before::LinkGone { outlives: true },
            true,
        ),
        (
            Some(State::Reloading),
            true,
            false,
            Before::LinkGone { outlives: true },
            true,
        ),
    ];
    for (state, with_dns, present, want, asked) in rows {
        let journal = state.map(|s| {
            let mut j = Journal::for_up(&rich());
            j.state = s;
            if with_dns {
                j.records.push(dns.clone());
            }
            j
        });
        let was_asked = Cell::new(false);
        let got = before_up(journal.as_ref(), |_| {
            was_asked.set(true);
            present
        });
        assert_eq!(got, want, "{state:?} dns {with_dns} link {present}");
        assert_eq!(
            was_asked.get(),
            asked,
            "{state:?}: the link is looked for only when up"
        );
    }
}

/// The rich configuration up through the transaction, in `dir`.
fn up_in(dir: &Path) -> FakeKernel {
    let mut k = fresh_kernel();
    k.put_key_file("/keys/new.key", 0x42);
    let outcome = transaction::up(
        &journal::path_for(dir, "wg0"),
        &rich(),
        &mut plan::up(&rich()),
        &mut k,
        &AtomicBool::new(false),
        Faults::default(),
    );
    assert_eq!(outcome, Outcome::Done);
    k
}

fn journal_in(dir: &Path) -> Journal {
    journal::load(&journal::path_for(dir, "wg0"))
        .unwrap()
        .expect("a journal")
}

fn record_in(dir: &Path) -> Option<Applied> {
    applied::load(&applied::path_for(dir, "wg0")).unwrap()
}

fn next_in(dir: &Path) -> bool {
    applied::next_path_for(dir, "wg0").exists()
}

#[test]
fn an_up_writes_its_record_then_says_up_and_a_rolled_back_one_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let _k = up_in(dir.path());
    assert_eq!(journal_in(dir.path()).state, State::Running);
    let record = record_in(dir.path()).expect("the record of what was applied");
    let mut want = Applied::of(&rich());
    // The host name resolved, and is recorded as refresh's baseline.
    want.resolved_endpoints
        .insert(pk(FIRST), "198.51.100.1:51820".parse().unwrap());
    assert_eq!(record, want);

    // A step fails: rolled back, no journal, no record.
    let dir = tempfile::tempdir().unwrap();
    let mut k = fresh_kernel();
    k.fail_call(5, KernelError::from_errno(16, Some("injected")));
    let outcome = transaction::up(
        &journal::path_for(dir.path(), "wg0"),
        &rich(),
        &mut plan::up(&rich()),
        &mut k,
        &AtomicBool::new(false),
        Faults::default(),
    );
    assert!(
        matches!(outcome, Outcome::RolledBack(ref m) if m.contains("injected")),
        "{outcome:?}"
    );
    assert!(!journal::path_for(dir.path(), "wg0").exists());
    assert_eq!(record_in(dir.path()), None);
}

/// A reload of `cfg` through the transaction, as the command runs it.
fn reload_in(dir: &Path, k: &mut FakeKernel, cfg: &config::Config) -> Outcome {
    let journal = journal_in(dir);
    let recorded = transaction::recorded(dir, "wg0", &journal).unwrap();
    let live = reload::read_live(k, &Netns::Named("tunnel".into()), "wg0")
        .unwrap()
        .unwrap();
    let mut steps = reload::plan(cfg, &recorded, &live, k).unwrap().steps;
    let target = transaction::reload_target(cfg, &recorded);
    let mut jfile = JournalFile {
        path: journal::path_for(dir, "wg0"),
        journal,
    };
    if steps.is_empty() {
        return match transaction::reload_nothing(&mut jfile, cfg, &recorded, &target) {
            Ok(()) => Outcome::Done,
            Err(o) => o,
        };
    }
    transaction::reload(
        &mut jfile,
        cfg,
        &recorded,
        &target,
        &mut steps,
        k,
        &AtomicBool::new(false),
        Faults::default(),
    )
}

#[test]
fn a_reload_renames_its_record_over_the_last_and_a_rolled_back_one_keeps_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let mut k = up_in(dir.path());
    let before = record_in(dir.path()).unwrap();
    // A keepalive (not in the record) and an allowed IP, whose route the record holds.
    let edited = parse(
        &RICH
            .replace("persistent_keepalive: 25", "persistent_keepalive: 10")
            .replace(
                "allowed_ips: [\"203.0.113.7/32\"]",
                "allowed_ips: [\"203.0.113.7/32\", \"203.0.113.99/32\"]",
            ),
    );

    // Failing: the interface, the record and the journal's state stay; no next record.
    let copy = |k: &FakeKernel| {
        let mut c = fresh_kernel();
        c.state = k.state.clone();
        c.calls = k.calls.clone();
        c
    };
    // The calls of reading the link and planning, counted on a copy.
    let mut probe = copy(&k);
    let journal = journal_in(dir.path());
    let recorded = transaction::recorded(dir.path(), "wg0", &journal).unwrap();
    let live = reload::read_live(&mut probe, &Netns::Named("tunnel".into()), "wg0")
        .unwrap()
        .unwrap();
    reload::plan(&edited, &recorded, &live, &mut probe).unwrap();
    // The first call of the reload's steps fails.
    let mut failing = copy(&k);
    failing.fail_call(
        probe.calls.len() + 1,
        KernelError::from_errno(16, Some("injected")),
    );
    let outcome = reload_in(dir.path(), &mut failing, &edited);
    assert!(
        matches!(outcome, Outcome::RolledBack(ref m) if m.contains("injected")),
        "{outcome:?}"
    );
    assert_eq!(failing.state, k.state);
    assert_eq!(record_in(dir.path()), Some(before.clone()));
    assert!(!next_in(dir.path()));
    assert_eq!(journal_in(dir.path()).state, State::Running);

    // Succeeding: the next record becomes the record, the journal says up.
    assert_eq!(reload_in(dir.path(), &mut k, &edited), Outcome::Done);
    assert!(!next_in(dir.path()));
    let mut want = transaction::reload_target(&edited, &before);
    assert_eq!(
        want.resolved_endpoints.len(),
        1,
        "the baseline of the unchanged name stays"
    );
    want.resolved_endpoints
        .insert(pk(FIRST), "198.51.100.1:51820".parse().unwrap());
    assert_eq!(record_in(dir.path()), Some(want.clone()));
    assert!(want
        .routes
        .contains(&"203.0.113.99/32".parse::<ipnet::IpNet>().unwrap()));
    let j = journal_in(dir.path());
    assert_eq!((j.state, j.reload_step), (State::Running, None));

    // A change the record does not hold (only a keepalive): the record file is left as it is.
    use std::os::unix::fs::MetadataExt;
    let file = applied::path_for(dir.path(), "wg0");
    let inode = std::fs::metadata(&file).unwrap().ino();
    let keepalive = parse(
        &RICH
            .replace("persistent_keepalive: 25", "persistent_keepalive: 5")
            .replace(
                "allowed_ips: [\"203.0.113.7/32\"]",
                "allowed_ips: [\"203.0.113.7/32\", \"203.0.113.99/32\"]",
            ),
    );
    assert_eq!(reload_in(dir.path(), &mut k, &keepalive), Outcome::Done);
    assert_eq!(std::fs::metadata(&file).unwrap().ino(), inode);
    assert_eq!(record_in(dir.path()), Some(want));
    assert!(!next_in(dir.path()));
}

#[test]
fn a_reload_killed_twice_still_counts_what_the_first_added_as_ours() {
    let dir = tempfile::tempdir().unwrap();
    let mut k = up_in(dir.path());
    let ns = Netns::Named("tunnel".into());
    let x: ipnet::IpNet = "198.18.77.1/24".parse().unwrap();
    // Reload 1 adds address X and is killed after its last change.
    let one = parse(&RICH.replace("\"192.0.2.1/24\"", "\"192.0.2.1/24\", \"198.18.77.1/24\""));
    killed_reload(dir.path(), &mut k, &one);
    // Reload 2 goes back (and changes a keepalive); it writes its next record as `reload` does,
    // then is killed after its first step, before the step that removes X.
    let two = parse(&RICH.replace("persistent_keepalive: 25", "persistent_keepalive: 10"));
    let joined = transaction::recorded(dir.path(), "wg0", &journal_in(dir.path())).unwrap();
    assert!(joined.addresses.contains(&x), "reload 2 counts X as ours");
    let t2 = transaction::reload_target(&two, &joined);
    let running = transaction::running_record(&joined, &t2, true);
    applied::save(&applied::next_path_for(dir.path(), "wg0"), &running).unwrap();
    let live = reload::read_live(&mut k, &ns, "wg0").unwrap().unwrap();
    let mut steps = reload::plan(&two, &joined, &live, &mut k).unwrap().steps;
    assert!(steps.len() > 1, "a step before the address goes");
    executor::up(
        &mut steps[..1],
        &mut k,
        &AtomicBool::new(false),
        &mut NoWatch,
    )
    .unwrap();
    // Reload 3 still knows X is wg-exec's: it removes it, and records what the device has.
    let joined = transaction::recorded(dir.path(), "wg0", &journal_in(dir.path())).unwrap();
    assert!(joined.addresses.contains(&x), "reload 3 counts X as ours");
    assert_eq!(reload_in(dir.path(), &mut k, &two), Outcome::Done);
    let live = reload::read_live(&mut k, &ns, "wg0").unwrap().unwrap();
    assert!(!live.addrs.contains(&x), "X is gone: {:?}", live.addrs);
    let record = record_in(dir.path()).unwrap();
    assert!(!record.addresses.contains(&x));
    assert!(
        record.earlier_routes.is_empty(),
        "a promoted record has no union"
    );
    assert!(!next_in(dir.path()));
    assert_eq!(journal_in(dir.path()).state, State::Running);
}

/// A reload to `cfg` killed after its last change: its next record on disk, the journal saying
/// a reload runs, the device as `cfg` says. The record before it is returned.
fn killed_reload(dir: &Path, k: &mut FakeKernel, cfg: &config::Config) -> Applied {
    let before = record_in(dir).unwrap();
    let target = transaction::reload_target(cfg, &before);
    applied::save(&applied::next_path_for(dir, "wg0"), &target).unwrap();
    let mut jfile = JournalFile {
        path: journal::path_for(dir, "wg0"),
        journal: journal_in(dir),
    };
    jfile.set_state(State::Reloading).unwrap();
    let live = reload::read_live(k, &Netns::Named("tunnel".into()), "wg0")
        .unwrap()
        .unwrap();
    let mut steps = reload::plan(cfg, &before, &live, k).unwrap().steps;
    executor::up(&mut steps, k, &AtomicBool::new(false), &mut NoWatch).unwrap();
    before
}

#[test]
fn an_interrupted_reload_is_joined_then_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut k = up_in(dir.path());
    // A reload that dropped a peer was killed after its last change: the journal says
    // reloading, the next record is on disk, the device is as the new configuration says.
    let edited = parse(
        &RICH
            .replace("endpoint: \"203.0.113.7:51820\",", "")
            .replace(
                "allowed_ips: [\"203.0.113.7/32\"]",
                "allowed_ips: [\"203.0.113.7/32\", \"203.0.113.99/32\"]",
            ),
    );
    let before = killed_reload(dir.path(), &mut k, &edited);
    let target = transaction::reload_target(&edited, &before);

    // The next reload joins both records (the new route is wg-exec's either way) and, with
    // nothing left for the kernel, closes the interrupted one.
    let j = journal_in(dir.path());
    let joined = transaction::recorded(dir.path(), "wg0", &j).unwrap();
    assert_eq!(joined, before.union(&target));
    assert_eq!(reload_in(dir.path(), &mut k, &edited), Outcome::Done);
    assert_eq!(journal_in(dir.path()).state, State::Running);
    assert!(!next_in(dir.path()));
    assert_eq!(record_in(dir.path()), Some(target));
}

#[test]
fn endpoints_a_reload_records_table() {
    let cfg = rich();
    let mut recorded = Applied::of(&cfg);
    let old: SocketAddr = "198.51.100.1:51820".parse().unwrap();
    recorded.resolved_endpoints.insert(pk(FIRST), old);
    let edited = parse(&RICH.replace("peer1.example:51820", "peer9.example:51820"));
    let target = transaction::reload_target(&edited, &recorded);
    let new: SocketAddr = "198.51.100.9:51820".parse().unwrap();
    let second = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
    // pending, set -> the first peer's recorded endpoint and baseline (None: the target stands)
    type Row = (
        Vec<Key>,
        Vec<(Key, SocketAddr)>,
        Option<(Option<&'static str>, Option<SocketAddr>)>,
    );
    let rows: Vec<Row> = vec![
        (vec![], vec![], None),
        // Resolved and set: the new name, its address as the baseline.
        (
            vec![],
            vec![(key(FIRST), new)],
            Some((Some("peer9.example:51820"), Some(new))),
        ),
        // Did not resolve: the old endpoint and baseline are kept, the next reload sends again.
        (
            vec![key(FIRST)],
            vec![],
            Some((Some("peer1.example:51820"), Some(old))),
        ),
    ];
    for (pending, set, want) in rows {
        let got = transaction::with_endpoints(&target, &recorded, &pending, set.clone());
        match want {
            None => assert!(got.is_none(), "{pending:?} {set:?}"),
            Some((endpoint, baseline)) => {
                let got = got.expect("a record");
                assert_eq!(
                    got.endpoints.get(&pk(FIRST)).map(|e| e.to_string()),
                    endpoint.map(String::from)
                );
                assert_eq!(got.resolved_endpoints.get(&pk(FIRST)).copied(), baseline);
                // Other peers are as the target says.
                assert_eq!(
                    got.endpoints.get(&pk(second)),
                    target.endpoints.get(&pk(second))
                );
            }
        }
    }
    // A pending peer that had no endpoint recorded has none.
    let mut bare = recorded.clone();
    bare.endpoints.remove(&pk(FIRST));
    bare.resolved_endpoints.clear();
    let got = transaction::with_endpoints(&target, &bare, &[key(FIRST)], vec![]).unwrap();
    assert_eq!(got.endpoints.get(&pk(FIRST)), None);
    assert_eq!(got.resolved_endpoints.get(&pk(FIRST)), None);
}

#[test]
fn a_rolled_back_reload_that_finishes_a_killed_one_leaves_it_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let mut k = up_in(dir.path());
    let ns = Netns::Named("tunnel".into());
    let x: ipnet::IpNet = "198.18.77.1/24".parse().unwrap();
    // Reload 1 adds address X and is killed after its last change.
    let one = parse(&RICH.replace("\"192.0.2.1/24\"", "\"192.0.2.1/24\", \"198.18.77.1/24\""));
    killed_reload(dir.path(), &mut k, &one);
    // Reload 2 (back, and a keepalive) fails at its first call and is rolled back: the device is
    // as reload 1 left it, so the journal still says a reload is unfinished and X stays ours.
    let two = parse(&RICH.replace("persistent_keepalive: 25", "persistent_keepalive: 10"));
    let mut probe = fresh_kernel();
    probe.state = k.state.clone();
    let joined = transaction::recorded(dir.path(), "wg0", &journal_in(dir.path())).unwrap();
    let live = reload::read_live(&mut probe, &ns, "wg0").unwrap().unwrap();
    reload::plan(&two, &joined, &live, &mut probe).unwrap();
    let mut failing = fresh_kernel();
    failing.state = k.state.clone();
    failing.fail_call(
        probe.calls.len() + 1,
        KernelError::from_errno(16, Some("injected")),
    );
    let outcome = reload_in(dir.path(), &mut failing, &two);
    assert!(matches!(outcome, Outcome::RolledBack(_)), "{outcome:?}");
    assert_eq!(failing.state, k.state);
    assert_eq!(journal_in(dir.path()).state, State::Reloading);
    let joined = transaction::recorded(dir.path(), "wg0", &journal_in(dir.path())).unwrap();
    assert!(joined.addresses.contains(&x), "X is still counted as ours");
    // The next reload converges and closes it.
    assert_eq!(reload_in(dir.path(), &mut k, &two), Outcome::Done);
    let live = reload::read_live(&mut k, &ns, "wg0").unwrap().unwrap();
    assert!(!live.addrs.contains(&x));
    assert_eq!(journal_in(dir.path()).state, State::Running);
    assert!(!next_in(dir.path()));
}
