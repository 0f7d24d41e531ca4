//! `dns`: the configuration (servers, search and routing domains, errors with file:line:col),
//! the step's place in the up plan, its rollback, and its revert by down from the configuration,
//! from the journal, and by the recovery of an up that was killed. With the fake kernel: the
//! real backends are tested in the systemd VM (tests/systemd/guest.sh).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use wg_exec::config::derived;
use wg_exec::config::{self, Config, RouteTables};
use wg_exec::executor::{self, NoWatch};
use wg_exec::journal::{self, Journal, JournalFile, What};
use wg_exec::plan;
use wg_exec_steps::fake::FakeKernel;
use wg_exec_steps::{DnsBackend, DnsSettings, KernelError, Netns, StepKind};

fn parse(text: &str) -> Result<Config, String> {
    config::parse("wg0", Path::new("t.ron"), text, &RouteTables::builtin())
        .map(|(c, _)| c)
        .map_err(|e| e.to_string())
}

const PEER: &str = r#"peers: [Peer(public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", allowed_ips: ["198.51.100.0/24"])],"#;

fn with_dns(dns: &str, extra: &str) -> String {
    format!(
        "Interface(\n    private_key: \"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\",\n    ips: [\"192.0.2.1/24\"],\n    {extra}\n    dns: {dns},\n    {PEER}\n)\n"
    )
}

#[test]
fn addresses_are_servers_names_search_domains_and_tilde_names_routing_domains() {
    let c = parse(&with_dns(
        r#"["192.0.2.53", "2001:db8::53", "corp.example", "~lab.example", "~."]"#,
        "",
    ))
    .unwrap();
    assert_eq!(
        c.dns.servers,
        [
            "192.0.2.53".parse::<std::net::IpAddr>().unwrap(),
            "2001:db8::53".parse().unwrap()
        ]
    );
    assert_eq!(c.dns.search, ["corp.example"]);
    assert_eq!(c.dns.routing, ["lab.example", "."]);
    assert_eq!(
        c.dns.entries(),
        [
            "192.0.2.53",
            "2001:db8::53",
            "corp.example",
            "~lab.example",
            "~."
        ]
    );
    // No dns: nothing.
    let none = parse(&with_dns("[]", "")).unwrap();
    assert!(none.dns.is_empty());
    assert!(derived::dns_settings(&none).is_none());
}

#[test]
fn bad_entries_name_file_line_column_and_field() {
    let text = with_dns(
        r#"["192.0.2.53",
        "not a name", "-bad.example", "~", ".", "0.0.0.0", "192.0.2.53"]"#,
        "",
    );
    let err = parse(&text).unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "t.ron:6:9: dns[1]: `not a name` is neither an IP address (a DNS server) nor a domain name (a search domain, or `~domain` for a routing domain)",
            "t.ron:6:23: dns[2]: `-bad.example` is neither an IP address (a DNS server) nor a domain name (a search domain, or `~domain` for a routing domain)",
            "t.ron:6:39: dns[3]: `~`: `` is not a domain name; a routing domain is `~` and a domain (`~corp.example`), or `~.` for every name",
            "t.ron:6:44: dns[4]: `.` cannot be a search domain; `~.` sends every query to these servers",
            "t.ron:6:49: dns[5]: `0.0.0.0` cannot be a DNS server",
            "t.ron:6:60: dns[6]: `192.0.2.53` is already dns[0]",
        ],
        "{err}"
    );
}

#[test]
fn domains_without_a_server_are_an_error_not_ignored() {
    let err = parse(&with_dns(r#"["corp.example", "~lab.example"]"#, "")).unwrap_err();
    assert_eq!(
        err,
        "t.ron:5:10: dns: domains without a DNS server: add the address of a server that answers for them (wg-quick silently ignores DNS = with domains only)"
    );
}

#[test]
fn dns_for_a_link_in_a_named_namespace_is_refused() {
    let err = parse(&with_dns(
        r#"["192.0.2.53"]"#,
        r#"interface_namespace: "tunnel","#,
    ))
    .unwrap_err();
    assert!(
        err.starts_with("t.ron:5:10: dns: the link ends up in network namespace `tunnel` (interface_namespace), but systemd-resolved and resolvconf serve the host's namespace"),
        "{err}"
    );
    let err = parse(&with_dns(
        r#"["192.0.2.53"]"#,
        r#"socket_namespace: "under","#,
    ))
    .unwrap_err();
    assert!(err.contains("`under` (socket_namespace)"), "{err}");
    // PID 1's namespace is the host's.
    parse(&with_dns(
        r#"["192.0.2.53"]"#,
        r#"interface_namespace: "init","#,
    ))
    .unwrap();
}

#[test]
fn wg_quick_dns_lines_map_to_dns_with_their_positions() {
    let text = "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\nDNS = 192.0.2.53, corp.example\nDNS = bad name\n";
    let err = config::parse("wg0", Path::new("wg0.conf"), text, &RouteTables::builtin())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("wg0.conf:4:7: DNS: `bad name` is neither"),
        "{err}"
    );
    let text = "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\nDNS = 192.0.2.53, corp.example\n";
    let (c, _) =
        config::parse("wg0", Path::new("wg0.conf"), text, &RouteTables::builtin()).unwrap();
    // wg-quick's resolvconf -x: every query goes to the link, said as `~.`.
    assert_eq!(c.dns.entries(), ["192.0.2.53", "corp.example", "~."]);
    let settings = derived::dns_settings(&c).unwrap();
    assert!(settings.default_route && settings.every_query());
}

#[test]
fn a_full_tunnel_sends_every_query_through_it() {
    let c = parse(&with_dns(r#"["192.0.2.53", "corp.example"]"#, "")).unwrap();
    assert!(!c.full_tunnel());
    let split = derived::dns_settings(&c).unwrap();
    assert_eq!(split.routing, Vec::<String>::new());
    assert!(
        !split.default_route,
        "a search domain given: not the default route"
    );
    let mut c = parse(&with_dns(
        r#"["192.0.2.53", "corp.example"]"#,
        r#"table: "auto","#,
    ))
    .unwrap();
    assert!(!c.full_tunnel(), "no peer takes every address yet");
    c.peers[0].allowed_ips.push("0.0.0.0/0".parse().unwrap());
    assert!(c.full_tunnel());
    assert_eq!(
        derived::dns_settings(&c).unwrap(),
        DnsSettings {
            servers: vec!["192.0.2.53".parse().unwrap()],
            search: vec!["corp.example".into()],
            routing: vec![".".into()],
            default_route: true,
        }
    );
}

fn kinds(p: &plan::Plan) -> Vec<StepKind> {
    p.iter().map(|s| s.kind()).collect()
}

fn dns_config() -> Config {
    parse(&with_dns(
        r#"["192.0.2.53", "corp.example"]"#,
        r#"post_setup: "true", pre_shutdown: "true","#,
    ))
    .unwrap()
}

#[test]
fn the_dns_step_comes_after_the_peers_and_before_the_routes() {
    let up = plan::up(&dns_config());
    let k = kinds(&up);
    let at = |kind| k.iter().position(|x| *x == kind).unwrap();
    // After the peers: their endpoint names resolve through the machine's DNS, not the
    // tunnel's (unreachable until the peers exist, and with `~.` it would take every query).
    assert_eq!(at(StepKind::Dns), at(StepKind::PeerSet) + 1, "{k:?}");
    assert_eq!(at(StepKind::Dns) + 1, at(StepKind::Routes), "{k:?}");
    let printed = executor::print(&up);
    assert!(printed.contains(
        "resolvectl domain wg0 corp.example\nresolvectl dns wg0 192.0.2.53\nresolvectl default-route wg0 no\n# without systemd-resolved: printf 'nameserver 192.0.2.53\\nsearch corp.example\\n' | resolvconf -a wg0 -m 0\nip route replace"
    ), "{printed}");
    // Down from the configuration reverts DNS after pre_shutdown, before the link goes.
    let down = plan::down_from_config(&dns_config(), false);
    assert_eq!(
        kinds(&down),
        [StepKind::PreShutdown, StepKind::Dns, StepKind::Teardown]
    );
    // Run from a namespace other than the host's, it leaves DNS alone: the revert would name
    // another link of the host's (the plan is told where it runs; it does not look).
    assert_eq!(
        kinds(&plan::down_from_config(&dns_config(), true)),
        [StepKind::PreShutdown, StepKind::Teardown]
    );
    assert_eq!(
        executor::print(&down),
        "true\nresolvectl revert wg0\n# without systemd-resolved: resolvconf -d wg0 -f\nip link del dev wg0\n"
    );
}

#[test]
fn a_failure_after_the_dns_step_reverts_it_and_the_machine_is_as_before() {
    for backend in [DnsBackend::Resolved, DnsBackend::Resolvconf] {
        let mut k = FakeKernel::new();
        k.dns_backend = Some(backend);
        let before = k.state.clone();
        let mut up = plan::up(&dns_config());
        // Fail the routes step, the one after DNS (a RON post_setup runs before the peers).
        let mut probe = FakeKernel::new();
        probe.dns_backend = Some(backend);
        executor::up(
            &mut plan::up(&dns_config()),
            &mut probe,
            &AtomicBool::new(false),
            &mut NoWatch,
        )
        .unwrap();
        let route = probe
            .calls
            .iter()
            .position(|c| c.starts_with("route_replace"))
            .unwrap();
        k.fail_call(route + 1, KernelError::new("EINVAL"));
        let err = executor::up(&mut up, &mut k, &AtomicBool::new(false), &mut NoWatch).unwrap_err();
        assert!(
            err.to_string()
                .contains("rolled back: dns, peer set, up, key"),
            "{err}"
        );
        assert!(!err.incomplete());
        assert_eq!(k.state, before, "{backend}");
        assert!(k
            .calls
            .contains(&format!("dns_revert {backend} current wg0")));
    }
}

#[test]
fn a_failed_dns_step_rolls_back_what_came_before() {
    let mut k = FakeKernel::new();
    let before = k.state.clone();
    // dns_available answers, then dns_set fails.
    let mut probe = FakeKernel::new();
    executor::up(
        &mut plan::up(&dns_config()),
        &mut probe,
        &AtomicBool::new(false),
        &mut NoWatch,
    )
    .unwrap();
    let set = probe
        .calls
        .iter()
        .position(|c| c.starts_with("dns_set"))
        .unwrap();
    k.fail_call(set + 1, KernelError::new("LinkBusy"));
    let err = executor::up(
        &mut plan::up(&dns_config()),
        &mut k,
        &AtomicBool::new(false),
        &mut NoWatch,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed at step 'dns' (wg0): set DNS of wg0 through systemd-resolved: LinkBusy; rolled back: peer set, up"),
        "{err}"
    );
    assert_eq!(k.state, before);
}

fn journal_file(dir: &Path, cfg: &Config) -> JournalFile {
    JournalFile {
        path: journal::path_for(dir, "wg0"),
        journal: Journal::for_up(cfg),
    }
}

#[test]
fn the_journal_records_the_backend_before_the_step_and_down_reverts_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dns_config();
    let mut k = FakeKernel::new();
    k.dns_backend = Some(DnsBackend::Resolvconf);
    let mut jf = journal_file(dir.path(), &cfg);
    let mut up = plan::up(&cfg);
    let dns_at = kinds(&up).iter().position(|k| *k == StepKind::Dns).unwrap();
    // Up to and including the DNS step's intent, as a killed up leaves it: the intent is on
    // disk before the step runs.
    for (i, step) in up.iter_mut().enumerate().take(dns_at + 1) {
        executor::Watch::before(&mut jf, i, step.as_ref(), &mut k).unwrap();
        step.apply(&mut k).unwrap();
        executor::Watch::after(&mut jf, i, step.as_ref(), &mut k);
    }
    let on_disk = journal::load(&jf.path).unwrap().unwrap();
    assert!(on_disk.records.iter().any(|r| r.what
        == What::Dns {
            name: "wg0".into(),
            netns: Netns::Current,
            backend: Some(DnsBackend::Resolvconf)
        }));
    assert_eq!(
        on_disk.dns(),
        vec![("wg0".into(), Netns::Current, Some(DnsBackend::Resolvconf))]
    );
    assert!(k.state.dns.contains_key("wg0"));
    // The killed up is recovered from the journal alone: DNS reverted, then the link deleted.
    let recovery = plan::down_from_journal(&on_disk, false);
    assert_eq!(kinds(&recovery), [StepKind::Dns, StepKind::Teardown]);
    assert_eq!(
        executor::print(&recovery),
        "resolvconf -d wg0 -f\nip link del dev wg0\n"
    );
    let mut rec = recovery;
    assert!(executor::down(&mut rec, &mut k, &mut NoWatch).is_empty());
    assert!(k.state.dns.is_empty() && k.state.links.is_empty());
    // Again (a down repeated after a crash): nothing left, no error.
    let mut again = plan::down_from_journal(&on_disk, true);
    assert!(executor::down(&mut again, &mut k, &mut NoWatch).is_empty());
}

#[test]
fn down_from_a_complete_journal_reverts_dns_before_the_link_goes_and_a_failure_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dns_config();
    let mut k = FakeKernel::new();
    let mut jf = journal_file(dir.path(), &cfg);
    executor::up(
        &mut plan::up(&cfg),
        &mut k,
        &AtomicBool::new(false),
        &mut jf,
    )
    .unwrap();
    jf.set_state(journal::State::Running).unwrap();
    let j = journal::load(&jf.path).unwrap().unwrap();
    let down = plan::down_from_journal(&j, true);
    assert_eq!(
        kinds(&down),
        [StepKind::PreShutdown, StepKind::Dns, StepKind::Teardown]
    );
    let start = k.calls.len();
    // The revert fails (pre_shutdown is call start+1): down goes on, deletes the link, says
    // the DNS settings are left, and keeps the journal for the next down.
    k.fail_call(start + 2, KernelError::new("Access denied"));
    let outcome = wg_exec::commands::down::execute(
        &plan::DownSource::Journal(j.clone()),
        down,
        &mut k,
        &jf.path,
        &mut NoWatch,
    );
    assert!(k.state.links.is_empty());
    let wg_exec::outcome::Outcome::LeftBehind(lines) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        lines,
        [
            "step 'dns' (wg0): revert DNS of wg0 through systemd-resolved: Access denied"
                .to_string(),
            format!(
                "left behind: the DNS settings of wg0; the journal {} keeps it for the next down",
                jf.path.display()
            )
        ]
    );
    assert!(jf.path.exists());
    // The next down finishes it.
    let mut again = plan::down_from_journal(&j, true);
    assert!(executor::down(&mut again, &mut k, &mut NoWatch).is_empty());
    assert!(k.state.dns.is_empty());
}
