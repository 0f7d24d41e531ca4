//! The order of things. Each position in the up plan says why it stands there; the down plans
//! (from the configuration, or from the journal of the up) are short because deleting the link
//! takes its addresses, peers and routes with it. What a plan needs from the process comes from
//! its steps ([`needs`]).

use crate::config::derived::{dns_settings, full_tunnel, interface_ns, routes, socket_ns};
use crate::config::{Config, PostSetupAt};
use crate::journal::{Journal, What};
use wg_exec_steps::Addresses;
use wg_exec_steps::DeviceKey;
use wg_exec_steps::LinkAdd;
use wg_exec_steps::LinkUp;
use wg_exec_steps::Modprobe;
use wg_exec_steps::Mtu;
use wg_exec_steps::Needs;
use wg_exec_steps::NetnsMove;
use wg_exec_steps::Routes;
use wg_exec_steps::Teardown;
use wg_exec_steps::{
    AutoMtu, ChooseTable, DefaultRoutes, FindAndRemovePolicy, Firewall, PolicyRules, RemovePolicy,
    SrcValidMark,
};
use wg_exec_steps::{Backend, DnsBackend, Netns, SecretSource, Step};
use wg_exec_steps::{Dns, DnsRevert};
use wg_exec_steps::{GenerateKeyFile, RemoveKeyFile};
use wg_exec_steps::{Hook, Phase};
use wg_exec_steps::{PeerPlan, PeerSet};

pub type Plan = Vec<Box<dyn Step>>;

fn hook(device: &str, phase: Phase, lines: &[String]) -> Option<Box<dyn Step>> {
    (!lines.is_empty()).then(|| {
        Box::new(Hook {
            phase,
            device: device.to_string(),
            lines: lines.to_vec(),
        }) as Box<dyn Step>
    })
}

/// Everything a plan's steps need from the process.
pub fn needs(plan: &[Box<dyn Step>]) -> Needs {
    let mut all = Needs::default();
    for step in plan {
        all.add(step.needs());
    }
    all
}

pub fn up(cfg: &Config) -> Plan {
    let name = cfg.name.clone();
    let sock = socket_ns(cfg);
    let iface = interface_ns(cfg);
    let mut plan: Plan = Vec::new();

    // 1. The key file first: everything after may need it, and if it cannot be created nothing
    //    else has been touched.
    if cfg.generate_private_key_file {
        if let SecretSource::File(path) = &cfg.private_key {
            plan.push(Box::new(GenerateKeyFile::new(path.clone())));
        }
    }
    // 2. Load the module before the first netlink request that needs it; a userspace backend
    //    needs no module.
    if !matches!(cfg.backend, Backend::Userspace { .. }) {
        plan.push(Box::new(Modprobe {
            module: "wireguard".into(),
        }));
    }
    // 3. pre_setup runs before the link exists, as in the module (it may create namespaces or
    //    rules the rest relies on).
    plan.extend(hook(&cfg.name, Phase::PreSetup, &cfg.pre_setup));
    // 4. Create the link in the socket namespace: the UDP socket is bound where the link is born
    //    and stays there when the link moves.
    plan.push(Box::new(LinkAdd {
        name: name.clone(),
        ns: sock.clone(),
        backend: cfg.backend.clone(),
        listen_port: cfg.listen_port,
    }));
    // 5. Move it to the interface namespace before any address or route: a move flushes them.
    if cfg.interface_namespace.is_some() && iface != sock {
        plan.push(Box::new(NetnsMove {
            name: name.clone(),
            from: sock.clone(),
            to: iface.clone(),
        }));
    }
    // 6. MTU before addresses: IPv6 addresses need the final MTU to be at least 1280.
    if let Some(mtu) = cfg.mtu {
        plan.push(Box::new(Mtu::new(name.clone(), iface.clone(), mtu)));
    }
    // 7. Addresses while the link is still down, as the module does.
    if !cfg.ips.is_empty() {
        plan.push(Box::new(Addresses::new(
            name.clone(),
            iface.clone(),
            cfg.ips.clone(),
        )));
    }
    // 8. The private key, listen port and fwmark before any peer: a peer without a device key
    //    cannot handshake, and the port must be bound before endpoints are used.
    plan.push(Box::new(DeviceKey::new(
        name.clone(),
        iface.clone(),
        cfg.private_key.clone(),
        cfg.listen_port,
        cfg.fwmark,
    )));
    // 9. Up before routes: the kernel refuses routes through a link that is down.
    plan.push(Box::new(LinkUp {
        name: name.clone(),
        ns: iface.clone(),
    }));
    // 9b. post_setup (`post_setup_at: LinkUp`, RON's default) runs here, where the NixOS
    //     module runs postSetup:
    //     the link is up with its addresses and key, no peer or route exists yet (the module's
    //     peers are units of their own, started after the interface's). A postSetup written
    //     for the module (a route equal to an allowed IP, a rule, a firewall change) keeps
    //     working; its failure rolls back what was done so far.
    if cfg.post_setup_at == PostSetupAt::LinkUp {
        plan.extend(hook(&cfg.name, Phase::PostSetup, &cfg.post_setup));
    }
    // 10. Peers once the device is complete; endpoints resolve in the socket namespace.
    if !cfg.peers.is_empty() {
        let peers = cfg.peers.iter().map(peer_plan).collect();
        plan.push(Box::new(PeerSet::new(
            name.clone(),
            iface.clone(),
            sock.clone(),
            peers,
        )));
    }
    // 10b. wg-quick's automatic MTU (`mtu: "auto"`, or `table: "auto"` without `mtu`), from
    //      the routes to the endpoints, which only now are resolved and on the device.
    if cfg.auto_mtu {
        plan.push(Box::new(AutoMtu::new(
            name.clone(),
            iface.clone(),
            sock.clone(),
            cfg.ips.iter().any(|a| matches!(a, ipnet::IpNet::V6(_))),
        )));
    }
    // 10c. DNS once the link exists and is up (resolved knows links by index and takes
    //      settings for links that exist), after the peers, whose endpoint names must resolve
    //      through the DNS the machine had (the tunnel's servers are not reachable yet, and
    //      with `~.` they would take every query), and before the routes carry traffic, so
    //      that no query leaks around the tunnel once they do (wg-quick's order too).
    plan.extend(dns(cfg));
    // 11. Routes last among the kernel changes: traffic is steered into the tunnel only once the
    //     peers that will carry it exist.
    let routes = routes(cfg);
    if !routes.is_empty() {
        plan.push(Box::new(Routes::new(
            name.clone(),
            iface.clone(),
            routes,
            cfg.table.label.clone(),
        )));
    }
    // 11b. A full tunnel: table and fwmark, the rules, and only then the /0 routes in that
    //      table (before the suppress rule exists they would take the endpoint's traffic too),
    //      then the firewall and the sysctl that keep replies passing reverse-path filters.
    if let Some(ft) = full_tunnel(cfg) {
        plan.push(Box::new(ChooseTable::new(ft.clone())));
        plan.push(Box::new(PolicyRules::new(ft.clone())));
        plan.push(Box::new(DefaultRoutes::new(ft.clone())));
        plan.push(Box::new(Firewall::new(ft.clone())));
        if ft.v4 {
            plan.push(Box::new(SrcValidMark::new(ft)));
        }
    }
    // 12. Or (`post_setup_at: Last`: a wg-quick .conf's PostUp, and what `convert` writes for
    //     it) it sees the finished interface, where wg-quick runs it; its failure rolls
    //     everything back.
    if cfg.post_setup_at == PostSetupAt::Last {
        plan.extend(hook(&cfg.name, Phase::PostSetup, &cfg.post_setup));
    }
    plan
}

/// The DNS step of `cfg`, when it has `dns`.
fn dns(cfg: &Config) -> Option<Box<dyn Step>> {
    let settings = dns_settings(cfg)?;
    Some(Box::new(Dns::new(
        cfg.name.clone(),
        interface_ns(cfg),
        settings,
    )))
}

/// Reverting the DNS settings of link `name` (down), through `backend` when known.
fn dns_revert(name: &str, ns: Netns, backend: Option<DnsBackend>) -> Box<dyn Step> {
    Box::new(DnsRevert {
        name: name.to_string(),
        ns,
        backend,
    })
}

/// A configured peer as a step takes it: secrets still to be read, endpoint to be resolved.
pub fn peer_plan(p: &crate::config::Peer) -> PeerPlan {
    PeerPlan {
        name: p.name.clone(),
        public_key: p.public_key.clone(),
        preshared_key: p.preshared_key.clone(),
        endpoint: p.endpoint.clone(),
        persistent_keepalive: p.persistent_keepalive,
        allowed_ips: p.allowed_ips.clone(),
    }
}

/// Down when there is no journal: the configuration says where the link is.
pub fn down_from_config(cfg: &Config) -> Plan {
    let sock = socket_ns(cfg);
    let iface = interface_ns(cfg);
    let mut plan: Plan = Vec::new();
    // 1. pre_shutdown sees the interface still up.
    plan.extend(hook(&cfg.name, Phase::PreShutdown, &cfg.pre_shutdown));
    // 1b. A full tunnel's rules and firewall tables, found by their fixed shape (without a
    //     journal nothing says what up made).
    if cfg.full_tunnel() {
        plan.push(Box::new(FindAndRemovePolicy {
            name: cfg.name.clone(),
            ns: iface.clone(),
        }));
    }
    // 1b. DNS settings reverted while the link still exists (resolved knows it by index; a
    //     resolvconf entry would outlive it).
    //     Not from a namespace other than the host's, where up refuses `dns`: the revert would
    //     name another link of the host's.
    if !cfg.dns.is_empty() && !crate::preflight::in_foreign_netns() {
        plan.push(dns_revert(&cfg.name, iface.clone(), None));
    }
    // 2. Delete the link (its addresses, peers and `dev` routes go with it); look in the socket
    //    namespace too, where an interrupted up may have left it.
    plan.push(Box::new(Teardown {
        name: cfg.name.clone(),
        ns: iface.clone(),
        created_in: (iface != sock).then_some(sock),
    }));
    // 3. post_shutdown once it is gone.
    plan.extend(hook(&cfg.name, Phase::PostShutdown, &cfg.post_shutdown));
    plan
}

/// Down (`hooks`: with the shutdown hooks recorded at up) or recovery of an unfinished up
/// (without hooks), from the journal alone: delete the link where the journal last put it (and
/// where it was created, in case the move did not happen), and, for an up that never completed,
/// remove the key files it generated.
pub fn down_from_journal(journal: &Journal, hooks: bool) -> Plan {
    let mut plan: Plan = Vec::new();
    let device = &journal.interface;
    if hooks {
        plan.extend(hook(device, Phase::PreShutdown, &journal.pre_shutdown));
    }
    // A full tunnel's rules, routes, firewall and sysctl, newest first, before the link: they
    // outlive it.
    for (ns, objects) in journal.policy().into_iter().rev() {
        if !objects.is_empty() {
            plan.push(Box::new(RemovePolicy { ns, objects }));
        }
    }
    // DNS settings first, while the link still exists (a resolvconf entry outlives it).
    for (name, netns, backend) in journal.dns() {
        plan.push(dns_revert(&name, netns, backend));
    }
    for (name, created, now) in journal.links() {
        plan.push(Box::new(Teardown {
            name,
            created_in: (created != now).then_some(created),
            ns: now,
        }));
    }
    if !journal.is_up() {
        for r in journal.live().rev() {
            if let What::KeyFile {
                path,
                existed: false,
            } = &r.what
            {
                plan.push(Box::new(RemoveKeyFile { path: path.clone() }));
            }
        }
    }
    if hooks {
        plan.extend(hook(device, Phase::PostShutdown, &journal.post_shutdown));
    }
    plan
}

/// What `down` follows: the journal of the up when there is a usable one, else the
/// configuration. The real run and `--print` both choose through this.
pub enum DownSource {
    Journal(Journal),
    /// No journal, or an unusable one (the reason is kept for the message).
    Config(Box<Config>, Option<crate::journal::Unusable>),
}

impl DownSource {
    pub fn plan(&self) -> Plan {
        match self {
            DownSource::Journal(j) => down_from_journal(j, true),
            DownSource::Config(cfg, _) => down_from_config(cfg),
        }
    }
}
