//! A full tunnel (`table: "auto"`, a /0 allowed IP) on the fake kernel: the order of its steps,
//! a failure at every call of its up leaving the machine exactly as it was (rules, the
//! unreachable route, the firewall tables and the sysctl included), and the journal alone
//! taking it down, after a complete up and after one killed between any two steps.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use wg_exec::config::derived;
use wg_exec::config::{self, RouteTables};
use wg_exec::executor::{self, NoWatch};
use wg_exec::journal::{Journal, JournalFile, State};
use wg_exec::plan;
use wg_exec_steps::fake::FakeKernel;
use wg_exec_steps::{KernelError, Netns, PolicyRule};

const SERVER: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const OTHER: &str = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";

fn cfg(allowed: &str, extra: &str) -> config::Config {
    let text = format!(
        r#"(
    ips: ["198.18.0.2/24", "2001:db8:1::2/64"],
    private_key: "6Hq0LLNtBQbJDUlNfQ0TVwSPbuPZSxAq17GWkqT1wHw=",
    table: "auto",
    {extra}
    peers: [
        (public_key: "{SERVER}", allowed_ips: [{allowed}], endpoint: "192.0.2.1:51820"),
        (public_key: "{OTHER}", allowed_ips: ["198.51.100.0/24"], endpoint: "203.0.113.9:51820"),
    ],
)"#
    );
    config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        &text,
        &RouteTables::builtin(),
    )
    .unwrap()
    .0
}

/// A kernel where the first free table is 51821 (51820 is some other route's), the path to
/// one endpoint has MTU 1400 and the default route's is 1500.
fn kernel() -> FakeKernel {
    let mut k = FakeKernel::new();
    k.state.routes.insert((
        Netns::Current,
        "eth9".into(),
        wg_exec_steps::Route::new("192.0.2.128/25".parse().unwrap(), 51820, None),
    ));
    // Another tool's suppress rule, at another priority: it must survive everything.
    k.state.rules.insert((
        Netns::Current,
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
    k.path_mtu.insert("192.0.2.1".parse().unwrap(), 1400);
    k.path_mtu.insert("0.0.0.0".parse().unwrap(), 1500);
    k
}

/// The configuration's up, on the fake kernel, without a journal.
fn up(c: &config::Config, k: &mut FakeKernel) -> Result<(), Box<executor::UpError>> {
    executor::up(&mut plan::up(c), k, &AtomicBool::new(false), &mut NoWatch)
}

fn names(plan: &plan::Plan) -> Vec<&'static str> {
    plan.iter().map(|s| s.name()).collect()
}

#[test]
fn the_full_tunnel_steps_come_after_the_peers_and_the_main_table_routes() {
    let c = cfg("\"0.0.0.0/0\", \"::/0\"", "");
    assert_eq!(
        names(&plan::up(&c)),
        [
            "modprobe",
            "link add",
            "addresses",
            "key",
            "up",
            "peer set",
            "auto mtu",
            "route",
            "fwmark",
            "rules",
            "default route",
            "firewall",
            "sysctl"
        ]
    );
    // The /0s are not main-table routes; the other peer's prefix is.
    let routes: Vec<String> = derived::routes(&c).iter().map(|r| r.to_string()).collect();
    assert_eq!(routes, ["198.51.100.0/24 table 254"]);
    // IPv6 only: no sysctl (it is IPv4's), no leak protection to add.
    let v6 = cfg("\"::/0\"", "mtu: 1420,");
    assert_eq!(
        names(&plan::up(&v6))[7..],
        ["route", "fwmark", "rules", "default route", "firewall"]
    );
    // Table auto without a /0: main-table routes and the automatic MTU only, as wg-quick.
    let split = cfg("\"192.0.2.0/24\"", "");
    assert!(!split.full_tunnel());
    assert_eq!(names(&plan::up(&split))[6..], ["auto mtu", "route"]);
}

#[test]
fn up_builds_what_wg_quick_builds_with_fixed_priorities_and_the_first_free_table() {
    let c = cfg("\"0.0.0.0/0\"", "");
    let mut k = kernel();
    up(&c, &mut k).unwrap();
    let link = &k.state.links[&(Netns::Current, "wg0".to_string())];
    assert_eq!(link.fwmark, 51821, "51820 has a route");
    assert_eq!(link.mtu, 1320, "the endpoint's path MTU 1400 minus 80");
    let rules: Vec<String> = k.state.rules.iter().map(|(_, r)| r.to_string()).collect();
    assert_eq!(
        rules,
        [
            "-4 rule priority 100 lookup main suppress_prefixlength 0",
            "-4 rule priority 31820 lookup main suppress_prefixlength 0",
            "-4 rule priority 31821 not fwmark 0xca6d lookup 51821",
            "-6 rule priority 31820 lookup main suppress_prefixlength 0",
            "-6 rule priority 31821 not fwmark 0xca6d lookup 51821",
        ]
    );
    // IPv4 only, so IPv6 is blocked in the tunnel's table (leak protection, on by default).
    assert!(k
        .state
        .unreachable
        .contains(&(Netns::Current, "::/0".parse().unwrap(), 51821)));
    let tables: Vec<String> = k.state.nft.keys().map(|(_, t)| t.to_string()).collect();
    assert_eq!(tables, ["ip wg-exec-wg0"]);
    let script = k.state.nft.values().next().unwrap();
    assert!(
        script.contains("iifname != \"wg0\" ip daddr 198.18.0.2 fib saddr type != local drop"),
        "{script}"
    );
    assert!(
        script.contains("meta l4proto udp ct mark 51821 meta mark set ct mark"),
        "{script}"
    );
    assert_eq!(
        k.state.sysctls[&(
            Netns::Current,
            "net/ipv4/conf/all/src_valid_mark".to_string()
        )],
        "1"
    );
    // Without leak protection there is no IPv6 at all.
    let mut k = kernel();
    executor::up(
        &mut plan::up(&cfg("\"0.0.0.0/0\"", "ipv6_leak_protection: false,")),
        &mut k,
        &AtomicBool::new(false),
        &mut NoWatch,
    )
    .unwrap();
    assert!(k.state.unreachable.is_empty());
    assert!(k.state.rules.iter().all(|(_, r)| !r.v6));
}

#[test]
fn a_failure_at_every_call_of_a_full_tunnel_up_leaves_no_trace() {
    for allowed in ["\"0.0.0.0/0\"", "\"0.0.0.0/0\", \"::/0\"", "\"::/0\""] {
        let c = cfg(allowed, "");
        let mut k = kernel();
        up(&c, &mut k).unwrap();
        let total = k.calls.len();
        let mut checked = 0;
        for n in 1..=total {
            let mut k = kernel();
            let before = k.state.clone();
            k.fail_call(n, KernelError::from_errno(1, Some("injected")));
            let result = up(&c, &mut k);
            if k.calls[n - 1].starts_with("modprobe") {
                result.expect("up goes on when modprobe fails");
                continue;
            }
            let err = result.expect_err("an injected failure fails the up");
            assert!(!err.incomplete(), "{allowed}, call {n}: {err}");
            assert_eq!(
                k.state,
                before,
                "{allowed}: state after call {n} ({}) failed: {err}",
                k.calls[n - 1]
            );
            checked += 1;
        }
        assert!(checked >= 20, "{allowed}: {checked}");
    }
}

#[test]
fn a_rule_at_a_full_tunnel_priority_is_refused_before_any_rule_is_added() {
    let c = cfg("\"0.0.0.0/0\"", "");
    let mut k = kernel();
    let theirs = PolicyRule {
        v6: true,
        priority: 31821,
        table: 7,
        fwmark: None,
        invert: false,
        suppress_prefixlength: None,
        other: true,
    };
    k.state.rules.insert((Netns::Current, theirs));
    let before = k.state.clone();
    let err = up(&c, &mut k).unwrap_err();
    assert!(
        err.to_string().contains(
            "priority 31821 is taken by another rule (-6 rule priority 31821 lookup 7 with more selectors)"
        ),
        "{err}"
    );
    assert_eq!(k.state, before);
}

#[test]
fn a_configured_fwmark_is_the_table_and_stays_on_rollback() {
    let c = cfg("\"0.0.0.0/0\"", "fwmark: \"0x1234\",");
    let mut k = kernel();
    up(&c, &mut k).unwrap();
    assert!(!k.calls.iter().any(|c| c.starts_with("tables_in_use")));
    assert!(k
        .state
        .rules
        .iter()
        .any(|(_, r)| r.table == 0x1234 && r.fwmark == Some(0x1234) && r.invert));
}

/// Runs an up with a journal in `dir`, stopping (as if killed) before step `stop` when given.
fn up_with_journal(c: &config::Config, k: &mut FakeKernel, dir: &Path, stop: Option<usize>) {
    let mut jfile = JournalFile {
        path: dir.join("wg0.ron"),
        journal: Journal::for_up(c),
    };
    let mut steps = plan::up(c);
    if let Some(n) = stop {
        steps.truncate(n);
    }
    executor::up(&mut steps, k, &AtomicBool::new(false), &mut jfile).unwrap();
    if stop.is_none() {
        jfile.set_state(State::Running).unwrap();
    } else {
        jfile.save().unwrap();
    }
}

#[test]
fn the_journal_alone_takes_a_full_tunnel_down_and_finishes_a_killed_up() {
    let c = cfg("\"0.0.0.0/0\", \"::/0\"", "");
    let count = plan::up(&c).len();
    for stop in (1..count).map(Some).chain([None]) {
        let dir = tempfile::tempdir().unwrap();
        let mut k = kernel();
        let before = k.state.clone();
        up_with_journal(&c, &mut k, dir.path(), stop);
        let journal = wg_exec::journal::load(&dir.path().join("wg0.ron"))
            .unwrap()
            .unwrap();
        // The configuration is not consulted: a changed one cannot lead down astray.
        let mut down = plan::down_from_journal(&journal, stop.is_none());
        let from = k.calls.len();
        let failures = executor::down(&mut down, &mut k, &mut NoWatch);
        assert!(failures.is_empty(), "stop {stop:?}: {failures:?}");
        // The rules are listed once for all of them, not once per rule.
        let lists = k.calls[from..]
            .iter()
            .filter(|c| c.starts_with("rule_list"))
            .count();
        assert!(lists <= 1, "stop {stop:?}: {lists} rule dumps");
        assert_eq!(k.state, before, "after up stopped before step {stop:?}");
        // Again, with everything gone: still success.
        let failures = executor::down(
            &mut plan::down_from_journal(&journal, false),
            &mut k,
            &mut NoWatch,
        );
        assert!(failures.is_empty(), "{failures:?}");
    }
}

#[test]
fn down_puts_back_only_a_sysctl_it_changed() {
    let c = cfg("\"0.0.0.0/0\"", "");
    let key = (
        Netns::Current,
        "net/ipv4/conf/all/src_valid_mark".to_string(),
    );
    // Already 1 before up: never written, and still 1 after down.
    let dir = tempfile::tempdir().unwrap();
    let mut k = kernel();
    k.state.sysctls.insert(key.clone(), "1".into());
    up_with_journal(&c, &mut k, dir.path(), None);
    assert!(!k.calls.iter().any(|c| c.starts_with("sysctl_set")));
    let journal = wg_exec::journal::load(&dir.path().join("wg0.ron"))
        .unwrap()
        .unwrap();
    executor::down(
        &mut plan::down_from_journal(&journal, true),
        &mut k,
        &mut NoWatch,
    );
    assert_eq!(k.state.sysctls[&key], "1");
}

/// `wg-exec check` on a configuration file written to a fresh directory.
fn check(body: &str, path_env: Option<&str>) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wg0.ron");
    std::fs::write(&file, body).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wg-exec"));
    cmd.arg("check").arg("wg0").arg("--config").arg(&file);
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    cmd.output().unwrap()
}

const KEY: &str = "6Hq0LLNtBQbJDUlNfQ0TVwSPbuPZSxAq17GWkqT1wHw=";

#[test]
fn check_warns_about_an_endpoint_inside_a_route_of_the_tunnel() {
    let body = format!(
        r#"(private_key: "{KEY}", table: "auto", ips: ["198.18.0.2/24"],
            peers: [
                (public_key: "{SERVER}", allowed_ips: ["0.0.0.0/0"], endpoint: "192.0.2.1:51820"),
                (public_key: "{OTHER}", allowed_ips: ["203.0.113.0/24"], endpoint: "203.0.113.9:51820"),
            ])"#
    );
    let out = check(&body, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The second peer's endpoint is inside its own routed prefix; the first peer's is inside
    // the /0, which the full tunnel's fwmark keeps out of the tunnel: no warning for it.
    assert!(
        err.contains("peers[1].endpoint: endpoint 203.0.113.9 lies inside allowed IP 203.0.113.0/24, which becomes a route through wg0 (table 254)"),
        "{err}"
    );
    assert!(!err.contains("peers[0].endpoint"), "{err}");
}

#[test]
fn a_full_tunnel_without_nft_is_an_error_before_anything_changes() {
    let body = format!(
        r#"(private_key: "{KEY}", table: "auto",
            peers: [(public_key: "{SERVER}", allowed_ips: ["::/0"], endpoint: "192.0.2.1:51820")])"#
    );
    let out = check(&body, Some("/nonexistent"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "wg0.ron:1:70: table: a full tunnel (a /0 allowed IP with table \"auto\") needs nft"
        ),
        "{err}"
    );
    // Without a /0 it is no full tunnel, and needs no nft.
    let split = body.replace("::/0", "2001:db8::/32");
    let out = check(&split, Some("/nonexistent"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn table_auto_with_allowed_ips_as_routes_off_is_a_contradiction() {
    let body = format!(
        r#"(private_key: "{KEY}", table: "auto", allowed_ips_as_routes: false,
            peers: [(public_key: "{SERVER}", allowed_ips: ["0.0.0.0/0"])])"#
    );
    let out = check(&body, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("table: `auto` routes the allowed IPs"),
        "{err}"
    );
}

#[test]
fn on_a_kernel_without_ipv6_an_ipv4_tunnel_needs_no_leak_protection() {
    let c = cfg("\"0.0.0.0/0\"", "");
    let mut k = kernel();
    k.no_ipv6 = true;
    let before = k.state.clone();
    let dir = tempfile::tempdir().unwrap();
    up_with_journal(&c, &mut k, dir.path(), None);
    assert!(k.state.rules.iter().all(|(_, r)| !r.v6));
    assert!(k.state.unreachable.is_empty());
    let journal = wg_exec::journal::load(&dir.path().join("wg0.ron"))
        .unwrap()
        .unwrap();
    // The journal says what was made: no unreachable route (status would call it missing).
    let objects: Vec<String> = journal
        .policy()
        .iter()
        .flat_map(|(_, o)| o.iter().map(|o| o.to_string()))
        .collect();
    assert!(
        objects
            .iter()
            .all(|o| !o.contains("unreachable") && !o.starts_with("-6")),
        "{objects:?}"
    );
    let failures = executor::down(
        &mut plan::down_from_journal(&journal, true),
        &mut k,
        &mut NoWatch,
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(k.state, before);
    // An IPv6 full tunnel there is an error that says why, and leaves nothing.
    let mut k = kernel();
    k.no_ipv6 = true;
    let err = executor::up(
        &mut plan::up(&cfg("\"::/0\"", "")),
        &mut k,
        &AtomicBool::new(false),
        &mut NoWatch,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("add -6 rule priority 31820 lookup main suppress_prefixlength 0"),
        "{err}"
    );
    assert_eq!(k.state, before);
}

#[test]
fn a_configured_fwmark_whose_table_has_a_default_route_is_refused() {
    // Table 100 holds someone's default route: a full tunnel with fwmark 100 must not take it.
    let c = cfg("\"0.0.0.0/0\"", "fwmark: 100,");
    let mut k = kernel();
    k.state.routes.insert((
        Netns::Current,
        "eth9".into(),
        wg_exec_steps::Route::new("0.0.0.0/0".parse().unwrap(), 100, None),
    ));
    let before = k.state.clone();
    let err = up(&c, &mut k).unwrap_err();
    assert!(
        err.to_string().contains(
            "table 100 already has a route to 0.0.0.0/0: the fwmark names a table in use"
        ),
        "{err}"
    );
    assert_eq!(k.state, before);
    // The tables every host has are refused before anything runs.
    for (m, name) in [(253, "default"), (254, "main"), (255, "local")] {
        let text = format!(
            r#"(private_key: "{KEY}", table: "auto", fwmark: {m},
                peers: [(public_key: "{SERVER}", allowed_ips: ["0.0.0.0/0"])])"#
        );
        let err = config::parse("wg0", Path::new("wg0.ron"), &text, &RouteTables::builtin())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "fwmark: {m} is table {name}: a full tunnel's fwmark"
            )),
            "{err}"
        );
    }
}

#[test]
fn the_kernel_deletes_a_rule_by_few_fields_so_down_checks_them_all() {
    // Another tool's rule where one of ours was, the same but for the invert flag: the fake,
    // like the kernel, would delete it for ours; down must leave it.
    let c = cfg("\"0.0.0.0/0\"", "ipv6_leak_protection: false,");
    let dir = tempfile::tempdir().unwrap();
    let mut k = kernel();
    up_with_journal(&c, &mut k, dir.path(), None);
    let ours = PolicyRule {
        v6: false,
        priority: 31821,
        table: 51821,
        fwmark: Some(51821),
        invert: true,
        suppress_prefixlength: None,
        other: false,
    };
    let theirs = PolicyRule {
        invert: false,
        ..ours.clone()
    };
    assert!(k.state.rules.remove(&(Netns::Current, ours)));
    k.state.rules.insert((Netns::Current, theirs.clone()));
    let journal = wg_exec::journal::load(&dir.path().join("wg0.ron"))
        .unwrap()
        .unwrap();
    let failures = executor::down(
        &mut plan::down_from_journal(&journal, true),
        &mut k,
        &mut NoWatch,
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(k.state.rules.contains(&(Netns::Current, theirs)));
}

#[test]
fn a_rule_the_step_could_not_take_back_stays_in_the_journal_for_down() {
    let c = cfg("\"0.0.0.0/0\"", "ipv6_leak_protection: false,");
    let mut probe = kernel();
    up(&c, &mut probe).unwrap();
    // The second rule_add fails; the step's own undo of the first (a rule_list, then its
    // rule_del) fails too.
    let second = probe
        .calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.starts_with("rule_add"))
        .nth(1)
        .unwrap()
        .0
        + 1;
    let dir = tempfile::tempdir().unwrap();
    let mut k = kernel();
    let before = k.state.clone();
    k.fail_call(second, KernelError::from_errno(22, Some("injected")));
    k.fail_call(second + 2, KernelError::from_errno(16, None));
    let mut jfile = JournalFile {
        path: dir.path().join("wg0.ron"),
        journal: Journal::for_up(&c),
    };
    let err = executor::up(
        &mut plan::up(&c),
        &mut k,
        &AtomicBool::new(false),
        &mut jfile,
    )
    .unwrap_err();
    assert!(err.incomplete(), "{err}");
    assert!(k.state.rules.iter().any(|(_, r)| r.priority == 31820));
    // The journal still says the rules may exist: down takes what is left.
    jfile.save().unwrap();
    let journal = wg_exec::journal::load(&dir.path().join("wg0.ron"))
        .unwrap()
        .unwrap();
    assert!(!journal.policy().is_empty(), "{journal:?}");
    let failures = executor::down(
        &mut plan::down_from_journal(&journal, false),
        &mut k,
        &mut NoWatch,
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(k.state, before);
}

#[test]
fn mtu_auto_is_wg_quicks_rule_in_any_table() {
    let text = format!(
        r#"(private_key: "{KEY}", mtu: "auto", table: 1234,
            peers: [(public_key: "{SERVER}", allowed_ips: ["192.0.2.0/24"], endpoint: "192.0.2.1:51820")])"#
    );
    let c = config::parse("wg0", Path::new("wg0.ron"), &text, &RouteTables::builtin())
        .unwrap()
        .0;
    assert!(c.auto_mtu && c.mtu.is_none());
    let names = names(&plan::up(&c));
    assert!(
        names.contains(&"auto mtu") && !names.contains(&"mtu"),
        "{names:?}"
    );
    let mut k = kernel();
    up(&c, &mut k).unwrap();
    assert_eq!(
        k.state.links[&(Netns::Current, "wg0".to_string())].mtu,
        1320
    );
    // A .conf without an MTU line is the same (wg-quick sets its automatic MTU for any Table).
    let conf = format!(
        "[Interface]\nPrivateKey = {KEY}\nTable = 1234\n[Peer]\nPublicKey = {SERVER}\nAllowedIPs = 192.0.2.0/24\n"
    );
    let c = config::parse("wg0", Path::new("wg0.conf"), &conf, &RouteTables::builtin())
        .unwrap()
        .0;
    assert!(c.auto_mtu, "a .conf without MTU");
}

#[test]
fn up_records_the_table_its_step_chose_and_a_reload_keeps_it() {
    use wg_exec::journal::{applied, transaction};
    let c = cfg("\"0.0.0.0/0\", \"::/0\"", "");
    let mut k = kernel();
    let dir = tempfile::tempdir().unwrap();
    let outcome = transaction::up(
        &wg_exec::journal::path_for(dir.path(), "wg0"),
        &c,
        &mut plan::up(&c),
        &mut k,
        &AtomicBool::new(false),
        wg_exec::faults::Faults::default(),
    );
    assert_eq!(outcome, wg_exec::outcome::Outcome::Done);
    // 51820 has another route: the step chose 51821, and that is what the record says.
    let record = applied::load(&applied::path_for(dir.path(), "wg0"))
        .unwrap()
        .expect("the record of what was applied");
    assert_eq!(record.full_tunnel_table, Some(51821));
    assert_eq!(
        transaction::reload_target(&c, &record).full_tunnel_table,
        Some(51821)
    );
}
