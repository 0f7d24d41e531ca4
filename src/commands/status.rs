//! `wg-exec status IFACE`: the interface as up (and the last reload) recorded it, next to what
//! it is now and to what the configuration says. Drift is what is missing or extra against the
//! record (a peer, route or address removed or added by hand, a changed MTU, the link down) and
//! what a reload would change (a configuration edited since). A roamed endpoint, a port chosen
//! by the kernel and handshake ages are shown, never counted as drift. Never shows a secret;
//! takes no lock (it only reads).

use super::{load, Session};
use crate::cli::StatusArgs;
use crate::config::derived::{interface_ns, socket_ns};
use crate::config::{self, Config};
use crate::journal::applied::{self, Applied};
use crate::journal::{self, Journal, What};
use crate::outcome::Outcome;
use crate::plan;
use crate::reload::{self, Live};
use crate::state;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use wg_exec_steps::step::Needs;
use wg_exec_steps::{Kernel, Route};

/// The JSON document of `status --json` (field names are stable; see the README).
#[derive(Debug, Serialize)]
pub struct Status {
    pub interface: String,
    /// "in sync" or "drifted".
    pub state: String,
    pub netns: Option<String>,
    pub socket_netns: Option<String>,
    pub backend: String,
    pub userspace_implementation: Option<String>,
    pub userspace_pids: Vec<i32>,
    pub link_up: bool,
    pub mtu: u32,
    pub public_key: Option<String>,
    pub listen_port: u16,
    pub fwmark: u32,
    pub addresses: Vec<String>,
    pub routes: Vec<RouteStatus>,
    pub peers: Vec<PeerStatus>,
    /// One line per difference; empty when in sync.
    pub drift: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RouteStatus {
    pub destination: String,
    pub table: u32,
    pub metric: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct PeerStatus {
    pub name: String,
    pub public_key: String,
    pub endpoint: Option<String>,
    pub configured_endpoint: Option<String>,
    pub allowed_ips: Vec<String>,
    pub latest_handshake_seconds_ago: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub persistent_keepalive: u16,
    pub has_preshared_key: bool,
}

/// Differences between the record, the live interface and the configuration. `would` is what a
/// reload would run (its plan, printed).
pub fn drift(
    journal: &Journal,
    recorded: &Applied,
    live: &Live,
    cfg: Option<&Config>,
    fixed: &[String],
    would: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    if !live.link.up {
        out.push("the link is down".to_string());
    }
    // Against the record: what wg-exec applied and is no longer there, or was added.
    let have: BTreeSet<String> = live.addrs.iter().map(|a| a.to_string()).collect();
    for a in &recorded.addresses {
        if !have.contains(a) {
            out.push(format!("address {a} is missing"));
        }
    }
    for a in &have {
        if !recorded.addresses.contains(a) {
            out.push(format!(
                "address {a} is on the link but was not applied by wg-exec"
            ));
        }
    }
    if let Some(m) = recorded.mtu {
        if m != live.link.mtu {
            out.push(format!(
                "mtu is {} on the link, {m} was applied",
                live.link.mtu
            ));
        }
    }
    if let Some(p) = recorded.listen_port.filter(|p| *p != 0) {
        if p != live.device.listen_port {
            out.push(format!(
                "listen port is {} on the device, {p} was applied",
                live.device.listen_port
            ));
        }
    }
    let fwmark = recorded.device_fwmark();
    if fwmark != live.device.fwmark {
        out.push(format!(
            "fwmark is 0x{:x} on the device, 0x{fwmark:x} was applied",
            live.device.fwmark
        ));
    }
    let live_keys: BTreeSet<String> = live
        .device
        .peers
        .iter()
        .map(|p| p.public_key.to_base64())
        .collect();
    for (key, name) in &recorded.names {
        if !live_keys.contains(key) {
            out.push(format!("peer {name} ({key}) is missing from the device"));
        }
    }
    for key in &live_keys {
        if !recorded.names.contains_key(key) {
            out.push(format!(
                "peer {key} is on the device but was not applied by wg-exec"
            ));
        }
    }
    let live_routes: BTreeSet<&Route> = live.routes.iter().collect();
    let recorded_routes: Vec<Route> = recorded.route_list();
    for r in &recorded_routes {
        if !live_routes.contains(r) {
            out.push(format!("route {r} is missing"));
        }
    }
    let recorded_set: BTreeSet<&Route> = recorded_routes.iter().collect();
    for r in &live.routes {
        if r.table == recorded.table && !recorded_set.contains(r) {
            out.push(format!(
                "route {r} goes through the interface but was not applied by wg-exec"
            ));
        }
    }
    // Against the configuration: edited since up.
    match cfg {
        None => out.push(format!(
            "the configuration {} does not load; the record of up is shown",
            journal.config.display()
        )),
        Some(_) => {
            for f in fixed {
                out.push(format!(
                    "the configuration changed {f}: only down and up (systemctl restart) apply it"
                ));
            }
            for w in would {
                out.push(format!("a reload would run: {w}"));
            }
        }
    }
    out
}

fn status_of(journal: &Journal, recorded: &Applied, live: &Live, drift: Vec<String>) -> Status {
    let mut pids = Vec::new();
    for r in &journal.records {
        if let What::Link { userspace_pids, .. } = &r.what {
            pids.extend(
                userspace_pids
                    .iter()
                    .filter(|p| Path::new(&format!("/proc/{p}")).exists()),
            );
        }
    }
    let public_key = match &live.device.private_key {
        Some(k) => Some(crate::keys::public_of(k).to_base64()),
        None => live.device.public_key.as_ref().map(|k| k.to_base64()),
    };
    Status {
        interface: journal.interface.clone(),
        state: if drift.is_empty() {
            "in sync"
        } else {
            "drifted"
        }
        .into(),
        netns: recorded.interface_namespace.clone().into(),
        socket_netns: recorded.socket_namespace.clone().into(),
        // Auto on a kernel with WireGuard runs no program: the implementation is named only when
        // one serves the link.
        backend: match (recorded.backend.as_str(), pids.is_empty()) {
            ("Auto", true) => "Auto (kernel)".into(),
            ("Auto", false) => "Auto (userspace)".into(),
            (b, _) => b.to_string(),
        },
        userspace_implementation: (recorded.backend == "Userspace" || !pids.is_empty())
            .then(|| recorded.userspace_implementation.clone()),
        userspace_pids: pids,
        link_up: live.link.up,
        mtu: live.link.mtu,
        public_key,
        listen_port: live.device.listen_port,
        fwmark: live.device.fwmark,
        addresses: live.addrs.iter().map(|a| a.to_string()).collect(),
        routes: live
            .routes
            .iter()
            .map(|r| RouteStatus {
                destination: r.dst.to_string(),
                table: r.table,
                metric: r.metric,
            })
            .collect(),
        peers: live
            .device
            .peers
            .iter()
            .map(|p| {
                let key = p.public_key.to_base64();
                PeerStatus {
                    name: recorded
                        .names
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| key.clone()),
                    configured_endpoint: recorded.endpoints.get(&key).cloned(),
                    public_key: key,
                    endpoint: p.endpoint.map(|e| e.to_string()),
                    allowed_ips: p.allowed_ips.iter().map(|a| a.to_string()).collect(),
                    latest_handshake_seconds_ago: p.handshake_age,
                    rx_bytes: p.rx_bytes,
                    tx_bytes: p.tx_bytes,
                    persistent_keepalive: p.persistent_keepalive,
                    has_preshared_key: p.preshared_key.is_some(),
                }
            })
            .collect(),
        drift,
    }
}

fn text(s: &Status) -> String {
    let mut o = String::new();
    let ns = |n: &Option<String>| match n {
        Some(n) => format!("netns {n}"),
        None => "the current netns".into(),
    };
    o.push_str(&format!(
        "interface {} in {} (socket in {}), backend {}",
        s.interface,
        ns(&s.netns),
        ns(&s.socket_netns),
        s.backend
    ));
    if let Some(u) = &s.userspace_implementation {
        o.push_str(&format!(
            " ({u}{})",
            match s.userspace_pids.as_slice() {
                [] => String::new(),
                pids => format!(
                    ", pid {}",
                    pids.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            }
        ));
    }
    o.push('\n');
    o.push_str(&format!(
        "  link: {}, mtu {}\n",
        if s.link_up { "up" } else { "DOWN" },
        s.mtu
    ));
    if let Some(k) = &s.public_key {
        o.push_str(&format!("  public key: {k}\n"));
    }
    o.push_str(&format!("  listen port: {}\n", s.listen_port));
    if s.fwmark != 0 {
        o.push_str(&format!("  fwmark: 0x{:x}\n", s.fwmark));
    }
    o.push_str(&format!("  addresses: {}\n", s.addresses.join(", ")));
    o.push_str(&format!("  routes: {}\n", s.routes.len()));
    for p in &s.peers {
        o.push_str(&format!("peer {} ({})\n", p.name, p.public_key));
        if let Some(e) = &p.endpoint {
            o.push_str(&format!("  endpoint: {e}"));
            match &p.configured_endpoint {
                Some(c) if c != e => o.push_str(&format!(" (configured {c})\n")),
                _ => o.push('\n'),
            }
        }
        o.push_str(&format!("  allowed ips: {}\n", p.allowed_ips.join(", ")));
        o.push_str(&format!(
            "  latest handshake: {}\n",
            match p.latest_handshake_seconds_ago {
                Some(s) => format!("{s} s ago"),
                None => "never".into(),
            }
        ));
        o.push_str(&format!(
            "  transfer: {} B received, {} B sent\n",
            p.rx_bytes, p.tx_bytes
        ));
        if p.persistent_keepalive > 0 {
            o.push_str(&format!(
                "  persistent keepalive: every {} s\n",
                p.persistent_keepalive
            ));
        }
    }
    match s.drift.is_empty() {
        true => o.push_str("in sync\n"),
        false => {
            o.push_str(&format!("drifted ({}):\n", s.drift.len()));
            for d in &s.drift {
                o.push_str(&format!("  - {d}\n"));
            }
        }
    }
    o
}

pub fn run(a: &StatusArgs) -> Outcome {
    let name = a.iface.as_str();
    if let Err(m) = config::check_interface_name(name).and_then(|_| state::check_name(name)) {
        return Outcome::Invalid(vec![format!("interface name (command line): {m}")]);
    }
    let dir = journal::state_dir();
    let jpath = journal::path_for(&dir, name);
    // Status only reads: an untrusted state directory is read with a warning, but the
    // configuration file its journal names is not followed.
    let trusted = state::StateDir::open(&dir, state::Access::Change).is_ok();
    let journal = match journal::peek_read_only(&jpath) {
        Ok(Some(j)) if j.is_up() => j,
        Ok(Some(_)) => return Outcome::NotUp("an up did not finish; it is not up".into()),
        Ok(None) => {
            return Outcome::NotUp(format!("it is not up (no journal {})", jpath.display()))
        }
        Err(u) => return Outcome::Unknown(format!("{u}")),
    };
    let recorded = match applied::load_read_only(&applied::path_for(&dir, name)) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Outcome::Unknown(format!(
                "there is no record of what up applied ({})",
                applied::path_for(&dir, name).display()
            ))
        }
        Err(e) => return Outcome::Unknown(e),
    };
    // The configuration, when it loads; its problems are shown as drift, not as a failure.
    let file = a
        .config
        .clone()
        .or_else(|| trusted.then(|| journal.config.clone()));
    let cfg = load(name, file.as_deref()).ok();
    let link_ns = recorded.interface_namespace.clone();
    let mut needs = Needs::namespaces([&link_ns]);
    if let Some(c) = &cfg {
        needs.add(Needs::namespaces([&socket_ns(c), &interface_ns(c)]));
        let mut up = plan::needs(&plan::up(c));
        up.module = false;
        up.hooks = false;
        up.low_port = false;
        needs.add(up);
    }
    // Status only reads: a session without the lock.
    let session = match Session::open_unlocked(name) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let (mut kernel, _) = match session.kernel_for(&needs) {
        Ok(k) => k,
        Err(o) => return o,
    };
    // Read-only: a stale socket is reported, never removed.
    kernel.set_read_only();
    // The backend and the daemon the journal recorded: only that daemon's socket is used.
    journal::recovery::expect_userspace(&journal, &mut kernel);
    let live = match reload::read_live(&mut kernel, &link_ns, name) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Outcome::NotUp(format!(
                "the journal says it is up, but there is no link {name} in {link_ns} (deleted by hand?)"
            ))
        }
        Err(e) => return Outcome::Unknown(format!("cannot read {name} in {link_ns}: {e}")),
    };
    let (fixed, would) = match &cfg {
        Some(c) => {
            let fixed = reload::not_live(c, &recorded);
            let would = match fixed.is_empty() {
                true => would_run(c, &recorded, &live, &mut kernel),
                false => Vec::new(),
            };
            (fixed, would)
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut d = drift(&journal, &recorded, &live, cfg.as_ref(), &fixed, &would);
    match full_tunnel_drift(&journal, &recorded, &live, &mut kernel) {
        Ok(more) => d.extend(more),
        Err(e) => return Outcome::Unknown(format!("cannot read the full tunnel of {name}: {e}")),
    }
    match dns_drift(&journal, &recorded, &mut kernel) {
        Ok(more) => d.extend(more),
        Err(e) => return Outcome::Unknown(format!("cannot read the DNS settings of {name}: {e}")),
    }
    let status = status_of(&journal, &recorded, &live, d);
    match a.json {
        true => println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("plain data serializes")
        ),
        false => print!("{}", text(&status)),
    }
    match status.drift.is_empty() {
        true => Outcome::Done,
        false => Outcome::Drifted(status.drift),
    }
}

/// The link's DNS settings, when the backend that set them can say (systemd-resolved; not
/// resolvconf), against what was applied.
fn dns_drift(
    journal: &Journal,
    recorded: &Applied,
    kernel: &mut dyn Kernel,
) -> Result<Vec<String>, wg_exec_steps::KernelError> {
    let mut out = Vec::new();
    if recorded.dns.is_empty() {
        return Ok(out);
    }
    let (mut servers, mut search, mut routing) = (Vec::new(), Vec::new(), Vec::new());
    for e in &recorded.dns {
        match (e.parse::<std::net::IpAddr>(), e.strip_prefix('~')) {
            (Ok(ip), _) => servers.push(ip),
            (_, Some(d)) => routing.push(d.to_string()),
            _ => search.push(e.clone()),
        }
    }
    let settings = wg_exec_steps::DnsSettings::for_link(
        &servers,
        &search,
        &routing,
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
fn full_tunnel_drift(
    journal: &Journal,
    recorded: &Applied,
    live: &reload::Live,
    kernel: &mut dyn Kernel,
) -> Result<Vec<String>, wg_exec_steps::KernelError> {
    use wg_exec_steps::policy::PolicyObject;
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
        let want = recorded.full_tunnel.as_deref().map_or(0, |s| {
            if s.starts_with("0.0.0.0/0 and ::/0") {
                2
            } else {
                1
            }
        });
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
