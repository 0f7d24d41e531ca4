//! The drift rules of `wg-exec status`: what is missing or extra against the record (a peer,
//! route or address removed or added by hand, a changed MTU, the link down, a full tunnel's
//! rule or table gone, DNS settings reverted), and what a reload would change (a configuration
//! edited since). A roamed endpoint, a port chosen by the kernel and handshake ages are never
//! drift. One function per kind of object; [`all`] puts them in the order status prints them.

use crate::config::Config;
use crate::journal::applied::{Applied, PublicKey};
use crate::journal::Journal;
use crate::plan::reload::{self, Live};
use ipnet::IpNet;
use std::collections::BTreeSet;
use wg_exec_steps::policy::PolicyObject;
use wg_exec_steps::{Kernel, KernelError, Route};

/// What a reload would change: the options it cannot change live (`fixed`, from
/// [`reload::not_live`]) and what it would run (its plan, printed).
#[derive(Debug, Default)]
pub struct Reload {
    pub fixed: Vec<String>,
    pub would: Vec<String>,
}

impl Reload {
    /// What a reload of `cfg` would do to the live interface.
    pub fn of(cfg: &Config, recorded: &Applied, live: &Live, kernel: &mut dyn Kernel) -> Reload {
        let fixed = reload::not_live(cfg, recorded);
        let would = match fixed.is_empty() {
            true => would_run(cfg, recorded, live, kernel),
            false => Vec::new(),
        };
        Reload { fixed, would }
    }
}

/// Every difference, in the order status prints them: the link, its addresses, the device,
/// peers, routes, the configuration, the full tunnel, DNS. Err: what could not be read.
pub fn all(
    journal: &Journal,
    recorded: &Applied,
    live: &Live,
    cfg: Option<(&Config, &Reload)>,
    kernel: &mut dyn Kernel,
) -> Result<Vec<String>, String> {
    let mut out = link(live);
    out.extend(addresses(recorded, live));
    out.extend(device(recorded, live));
    out.extend(peers(recorded, live));
    out.extend(routes(recorded, live));
    out.extend(configuration(journal, cfg.map(|(_, r)| r)));
    let name = &journal.interface;
    out.extend(
        full_tunnel(journal, recorded, live, kernel)
            .map_err(|e| format!("cannot read the full tunnel of {name}: {e}"))?,
    );
    out.extend(
        dns(journal, recorded, kernel)
            .map_err(|e| format!("cannot read the DNS settings of {name}: {e}"))?,
    );
    Ok(out)
}

/// The link is down.
pub fn link(live: &Live) -> Vec<String> {
    match live.link.up {
        true => Vec::new(),
        false => vec!["the link is down".to_string()],
    }
}

/// Addresses wg-exec applied that are gone, and addresses it did not apply.
pub fn addresses(recorded: &Applied, live: &Live) -> Vec<String> {
    let have: BTreeSet<&IpNet> = live.addrs.iter().collect();
    let mut out: Vec<String> = recorded
        .addresses
        .iter()
        .filter(|a| !have.contains(a))
        .map(|a| format!("address {a} is missing"))
        .collect();
    // In the order of their text, as they were always listed.
    let mut extra: Vec<String> = have
        .iter()
        .filter(|a| !recorded.addresses.contains(a))
        .map(|a| a.to_string())
        .collect();
    extra.sort();
    out.extend(
        extra
            .iter()
            .map(|a| format!("address {a} is on the link but was not applied by wg-exec")),
    );
    out
}

/// The MTU, listen port and fwmark wg-exec applied, where they differ (a port the kernel chose
/// and no fwmark are not drift).
pub fn device(recorded: &Applied, live: &Live) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = recorded.mtu.filter(|m| *m != live.link.mtu) {
        out.push(format!(
            "mtu is {} on the link, {m} was applied",
            live.link.mtu
        ));
    }
    if let Some(p) = recorded
        .listen_port
        .filter(|p| *p != 0 && *p != live.device.listen_port)
    {
        out.push(format!(
            "listen port is {} on the device, {p} was applied",
            live.device.listen_port
        ));
    }
    let fwmark = recorded.device_fwmark();
    if fwmark != live.device.fwmark {
        out.push(format!(
            "fwmark is 0x{:x} on the device, 0x{fwmark:x} was applied",
            live.device.fwmark
        ));
    }
    out
}

/// Peers wg-exec applied that are gone, and peers it did not apply (by public key; a roamed
/// endpoint or a handshake is not drift).
pub fn peers(recorded: &Applied, live: &Live) -> Vec<String> {
    let live_keys: BTreeSet<PublicKey> = live
        .device
        .peers
        .iter()
        .map(|p| PublicKey::of(&p.public_key))
        .collect();
    let mut out: Vec<String> = recorded
        .names
        .iter()
        .filter(|(key, _)| !live_keys.contains(*key))
        .map(|(key, name)| {
            let name = name.as_deref().unwrap_or(key.as_str());
            format!("peer {name} ({key}) is missing from the device")
        })
        .collect();
    out.extend(
        live_keys
            .iter()
            .filter(|key| !recorded.names.contains_key(*key))
            .map(|key| format!("peer {key} is on the device but was not applied by wg-exec")),
    );
    out
}

/// Routes wg-exec applied that are gone, and routes through the link in its table that it did
/// not apply.
pub fn routes(recorded: &Applied, live: &Live) -> Vec<String> {
    let live_routes: BTreeSet<&Route> = live.routes.iter().collect();
    let recorded_routes: Vec<Route> = recorded.route_list();
    let mut out: Vec<String> = recorded_routes
        .iter()
        .filter(|r| !live_routes.contains(r))
        .map(|r| format!("route {r} is missing"))
        .collect();
    let recorded_set: BTreeSet<&Route> = recorded_routes.iter().collect();
    out.extend(
        live.routes
            .iter()
            .filter(|r| r.table == recorded.table && !recorded_set.contains(r))
            .map(|r| {
                format!("route {r} goes through the interface but was not applied by wg-exec")
            }),
    );
    out
}

/// The configuration edited since up: what only down and up apply, what a reload would run;
/// None: it does not load.
pub fn configuration(journal: &Journal, reload: Option<&Reload>) -> Vec<String> {
    match reload {
        None => vec![format!(
            "the configuration {} does not load; the record of up is shown",
            journal.config.display()
        )],
        Some(r) => r
            .fixed
            .iter()
            .map(|f| {
                format!(
                    "the configuration changed {f}: only down and up (systemctl restart) apply it"
                )
            })
            .chain(r.would.iter().map(|w| format!("a reload would run: {w}")))
            .collect(),
    }
}

/// The link's DNS settings, when the backend that set them can say (systemd-resolved; not
/// resolvconf), against what was applied.
pub fn dns(
    journal: &Journal,
    recorded: &Applied,
    kernel: &mut dyn Kernel,
) -> Result<Vec<String>, KernelError> {
    let mut out = Vec::new();
    if recorded.dns.is_empty() {
        return Ok(out);
    }
    let settings = wg_exec_steps::DnsSettings::for_link(
        &recorded.dns.servers,
        &recorded.dns.search,
        &recorded.dns.routing,
        recorded.full_tunnel.is_some(),
    );
    for (name, ns, backend) in journal.dns() {
        let Some(backend) = backend else { continue };
        if kernel.dns_matches(backend, &ns, &name, &settings)? == Some(false) {
            out.push(format!(
                "the DNS settings of {name} in {backend} are not what was applied (resolvectl status {name}; another tool, or a revert?)"
            ));
        }
    }
    Ok(out)
}

/// What a full tunnel made that is gone or changed: its rules (systemd-networkd deletes them
/// when it manages foreign rules), its /0 routes, its firewall tables, the sysctl.
pub fn full_tunnel(
    journal: &Journal,
    recorded: &Applied,
    live: &Live,
    kernel: &mut dyn Kernel,
) -> Result<Vec<String>, KernelError> {
    let mut out = Vec::new();
    for (ns, objects) in journal.policy() {
        let rules = kernel.rule_list(&ns)?;
        let tables = kernel.nft_tables(&ns)?;
        for o in &objects {
            let missing = match o {
                // By every field but `other`, which only reads mark.
                PolicyObject::Rule(r) => (!rules.iter().any(|x| {
                    let mut x = x.clone();
                    x.other = false;
                    x == *r
                }))
                .then(|| {
                    format!("{r} is missing (systemd-networkd with ManageForeignRoutingPolicyRules=yes deletes it)")
                }),
                PolicyObject::Nft(t) => {
                    (!tables.contains(t)).then(|| format!("nftables table {t} is missing"))
                }
                PolicyObject::Unreachable { dst, table } => {
                    let routes = kernel.table_routes(&ns, *table)?;
                    (!routes.contains(&(*dst, true))).then(|| {
                        format!("route unreachable {dst} table {table} is missing (IPv6 leaks around the tunnel)")
                    })
                }
                PolicyObject::Sysctl { path, old } if old != "1" => {
                    let now = kernel.sysctl_get(&ns, path)?;
                    (now != "1").then(|| format!("{} is {now}, 1 was applied", path.replace('/', ".")))
                }
                _ => None,
            };
            out.extend(missing);
        }
    }
    if let Some(t) = recorded.full_tunnel_table {
        let defaults = live
            .routes
            .iter()
            .filter(|r| r.table == t && r.dst.prefix_len() == 0)
            .count();
        let want = recorded.full_tunnel.as_ref().map_or(0, |s| s.families());
        if defaults < want {
            out.push(format!(
                "a default route of the full tunnel is missing from table {t}"
            ));
        }
    }
    Ok(out)
}

fn would_run(
    cfg: &Config,
    recorded: &Applied,
    live: &Live,
    kernel: &mut dyn Kernel,
) -> Vec<String> {
    match reload::plan(cfg, recorded, live, kernel) {
        Ok(p) => p.steps.iter().flat_map(|s| s.print()).collect(),
        Err(e) => vec![format!("(cannot tell: {e})")],
    }
}

/// The drift rules as tables on the fake kernel: an interface up from a configuration, one
/// change made by hand to the fake, and the exact lines each kind of object tells.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, RouteTables};
    use crate::executor;
    use crate::journal::applied::Applied;
    use crate::journal::JournalFile;
    use crate::plan;
    use std::path::Path;
    use std::sync::atomic::AtomicBool;
    use wg_exec_steps::fake::FakeKernel;
    use wg_exec_steps::{Key, Netns, NftTable, PeerSettings};

    const B: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    const C: &str = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";

    fn cfg(full_tunnel: bool) -> Config {
        let (allowed, table) = match full_tunnel {
            true => ("\"0.0.0.0/0\"", "table: \"auto\","),
            false => ("\"198.51.100.0/24\"", ""),
        };
        let text = format!(
            "Interface(private_key: \"6Hq0LLNtBQbJDUlNfQ0TVwSPbuPZSxAq17GWkqT1wHw=\", {table}
               ips: [\"192.0.2.1/24\"], mtu: 1380, listen_port: 51820,
               peers: [Peer(name: \"b\", public_key: \"{B}\", allowed_ips: [{allowed}],
                            endpoint: \"203.0.113.2:51820\")])"
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

    /// Up on the fake, with its journal and record, as `wg-exec up` leaves them.
    fn up(c: &Config) -> (FakeKernel, Journal, Applied, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut k = FakeKernel::new();
        k.path_mtu.insert("0.0.0.0".parse().unwrap(), 1500);
        let mut jfile = JournalFile {
            path: dir.path().join("wg0.ron"),
            journal: Journal::for_up(c),
        };
        executor::up(
            &mut plan::up(c),
            &mut k,
            &AtomicBool::new(false),
            &mut jfile,
        )
        .unwrap();
        let mut record = Applied::of(c);
        record.full_tunnel_table = jfile.journal.full_tunnel_table();
        (k, jfile.journal, record, dir)
    }

    fn live(k: &mut FakeKernel) -> Live {
        reload::read_live(k, &Netns::Current, "wg0")
            .unwrap()
            .unwrap()
    }

    fn link(k: &mut FakeKernel) -> &mut wg_exec_steps::fake::FakeLink {
        k.state
            .links
            .get_mut(&(Netns::Current, "wg0".to_string()))
            .unwrap()
    }

    fn key(text: &str) -> Key {
        Key::from_base64(text, false).unwrap()
    }

    type Change = fn(&mut FakeKernel);

    #[test]
    fn each_kind_of_object_tells_its_own_drift_and_nothing_else() {
        let c = cfg(false);
        let rows: Vec<(&str, Change, Vec<&str>)> = vec![
            ("nothing changed", |_| {}, vec![]),
            ("the link down", |k| link(k).up = false, vec!["the link is down"]),
            (
                "an address removed",
                |k| {
                    link(k).addrs.clear();
                },
                vec!["address 192.0.2.1/24 is missing"],
            ),
            (
                "addresses added, listed in the order of their text",
                |k| {
                    link(k).addrs.insert("2001:db8::9/64".parse().unwrap());
                    link(k).addrs.insert("10.0.0.1/8".parse().unwrap());
                },
                vec![
                    "address 10.0.0.1/8 is on the link but was not applied by wg-exec",
                    "address 2001:db8::9/64 is on the link but was not applied by wg-exec",
                ],
            ),
            (
                "the mtu, port and fwmark changed",
                |k| {
                    let l = link(k);
                    l.mtu = 1300;
                    l.listen_port = 4000;
                    l.fwmark = 7;
                },
                vec![
                    "mtu is 1300 on the link, 1380 was applied",
                    "listen port is 4000 on the device, 51820 was applied",
                    "fwmark is 0x7 on the device, 0x0 was applied",
                ],
            ),
            (
                "a peer removed and one added",
                |k| {
                    let l = link(k);
                    let mut p: PeerSettings = l.peers.remove(&key(B)).unwrap();
                    p.public_key = key(C);
                    p.allowed_ips.clear();
                    l.peers.insert(key(C), p);
                },
                vec![
                    "peer b (xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=) is missing from the device",
                    "peer TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0= is on the device but was not applied by wg-exec",
                ],
            ),
            (
                "a route removed and one added",
                |k| {
                    k.state.routes.clear();
                    k.state.routes.insert((
                        Netns::Current,
                        "wg0".into(),
                        Route::new("198.18.0.0/15".parse().unwrap(), 254, None),
                    ));
                },
                vec![
                    "route 198.51.100.0/24 table 254 is missing",
                    "route 198.18.0.0/15 table 254 goes through the interface but was not applied by wg-exec",
                ],
            ),
            (
                "a route in another table is not the interface's",
                |k| {
                    k.state.routes.insert((
                        Netns::Current,
                        "wg0".into(),
                        Route::new("198.18.0.0/15".parse().unwrap(), 77, None),
                    ));
                },
                vec![],
            ),
            (
                "a roamed endpoint, a handshake, traffic: not drift",
                |k| {
                    let p = link(k).peers.get_mut(&key(B)).unwrap();
                    p.endpoint = Some("198.51.100.77:4444".parse().unwrap());
                    k.handshake_age = Some(3);
                },
                vec![],
            ),
        ];
        for (what, change, want) in rows {
            let (mut k, journal, record, _dir) = up(&c);
            change(&mut k);
            let l = live(&mut k);
            let mut got = super::link(&l);
            got.extend(addresses(&record, &l));
            got.extend(device(&record, &l));
            got.extend(peers(&record, &l));
            got.extend(routes(&record, &l));
            got.extend(full_tunnel(&journal, &record, &l, &mut k).unwrap());
            got.extend(dns(&journal, &record, &mut k).unwrap());
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn a_full_tunnels_objects_each_tell_when_they_are_gone() {
        let c = cfg(true);
        let rows: Vec<(&str, Change, Vec<&str>)> = vec![
            ("nothing changed", |_| {}, vec![]),
            (
                "its rules deleted (systemd-networkd)",
                |k| k.state.rules.clear(),
                vec![
                    "-4 rule priority 31820 lookup main suppress_prefixlength 0 is missing (systemd-networkd with ManageForeignRoutingPolicyRules=yes deletes it)",
                    "-4 rule priority 31821 not fwmark 0xca6c lookup 51820 is missing (systemd-networkd with ManageForeignRoutingPolicyRules=yes deletes it)",
                    "-6 rule priority 31820 lookup main suppress_prefixlength 0 is missing (systemd-networkd with ManageForeignRoutingPolicyRules=yes deletes it)",
                    "-6 rule priority 31821 not fwmark 0xca6c lookup 51820 is missing (systemd-networkd with ManageForeignRoutingPolicyRules=yes deletes it)",
                ],
            ),
            (
                "its firewall table and the sysctl",
                |k| {
                    k.state.nft.clear();
                    k.state.sysctls.clear();
                },
                vec![
                    "nftables table ip wg-exec-wg0 is missing",
                    "net.ipv4.conf.all.src_valid_mark is 0, 1 was applied",
                ],
            ),
            (
                "its default route",
                |k| {
                    k.state.routes.retain(|(_, _, r)| r.dst.prefix_len() != 0);
                },
                // Not among the routes wg-exec applied through the interface: the full
                // tunnel's own.
                vec!["a default route of the full tunnel is missing from table 51820"],
            ),
            (
                "another tool's firewall table is not the tunnel's",
                |k| {
                    k.state.nft.insert(
                        (
                            Netns::Current,
                            NftTable {
                                family: "ip".into(),
                                name: "filter".into(),
                            },
                        ),
                        String::new(),
                    );
                },
                vec![],
            ),
        ];
        for (what, change, want) in rows {
            let (mut k, journal, record, _dir) = up(&c);
            change(&mut k);
            let l = live(&mut k);
            let mut got = routes(&record, &l);
            got.extend(full_tunnel(&journal, &record, &l, &mut k).unwrap());
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn a_configuration_that_does_not_load_or_changed_is_told() {
        let c = cfg(false);
        let (mut k, journal, record, _dir) = up(&c);
        let l = live(&mut k);
        assert_eq!(
            all(&journal, &record, &l, None, &mut k).unwrap(),
            ["the configuration /etc/wg-exec/wg0.ron does not load; the record of up is shown"]
        );
        let same = Reload::of(&c, &record, &l, &mut k);
        assert!(same.fixed.is_empty() && same.would.is_empty(), "{same:?}");
        assert_eq!(
            all(&journal, &record, &l, Some((&c, &same)), &mut k).unwrap(),
            Vec::<String>::new()
        );
        // Another socket namespace (where the link lives too) only down and up apply; a new
        // MTU a reload applies.
        let mut moved = c.clone();
        moved.socket_namespace = Some("elsewhere".into());
        let r = Reload::of(&moved, &record, &l, &mut k);
        assert_eq!(
            configuration(&journal, Some(&r)),
            [
                "the configuration changed socket_namespace (none -> elsewhere): only down and up (systemctl restart) apply it",
                "the configuration changed interface_namespace (none -> elsewhere): only down and up (systemctl restart) apply it"
            ]
        );
        let mut mtu = c.clone();
        mtu.mtu = Some(1400);
        let r = Reload::of(&mtu, &record, &l, &mut k);
        let lines = configuration(&journal, Some(&r));
        assert!(!lines.is_empty(), "{lines:?}");
        assert!(
            lines.iter().all(|l| l.starts_with("a reload would run: ")),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains("mtu 1400")), "{lines:?}");
    }
}
