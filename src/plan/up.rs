//! The up plan: the configuration's steps in the order that leaves no gap, each position with
//! why it stands there.

use super::{hook, peer_plan, Plan};
use crate::config::derived::{dns_settings, full_tunnel, interface_ns, routes, socket_ns};
use crate::config::{Config, PostSetupAt};
use wg_exec_steps::{
    Addresses, AutoMtu, Backend, ChooseTable, DefaultRoutes, DeviceKey, Dns, Firewall,
    GenerateKeyFile, LinkAdd, LinkUp, Modprobe, Mtu, NetnsMove, PeerSet, Phase, PolicyRules,
    Routes, SecretSource, SrcValidMark, Step,
};

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
