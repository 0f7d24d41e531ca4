//! Facts a configuration implies: where its link lives, its routes, its full tunnel and its DNS
//! settings. Pure functions of a [`Config`]: plans, the record of what was applied, reload and
//! status all read them here.

use super::Config;
use wg_exec_steps::FullTunnel;
use wg_exec_steps::{DnsSettings, Netns, Route};

/// Where the link is created and where its UDP socket stays.
pub fn socket_ns(cfg: &Config) -> Netns {
    Netns::from_option(cfg.socket_namespace.as_deref())
}

/// Where the link ends up: the interface namespace if set, else the socket namespace.
pub fn interface_ns(cfg: &Config) -> Netns {
    match &cfg.interface_namespace {
        Some(n) => Netns::from_option(Some(n)),
        None => socket_ns(cfg),
    }
}

/// What the link's DNS settings are: see [`DnsSettings::for_link`].
pub fn dns_settings(cfg: &Config) -> Option<DnsSettings> {
    (!cfg.dns.is_empty()).then(|| {
        DnsSettings::for_link(
            &cfg.dns.servers,
            &cfg.dns.search,
            &cfg.dns.routing,
            cfg.full_tunnel(),
        )
    })
}

/// What a full tunnel covers, when the configuration makes one.
pub fn full_tunnel(cfg: &Config) -> Option<FullTunnel> {
    if !cfg.full_tunnel() {
        return None;
    }
    let all = cfg.peers.iter().flat_map(|p| p.allowed_ips.iter());
    let defaults: Vec<&ipnet::IpNet> = all.filter(|n| n.prefix_len() == 0).collect();
    Some(FullTunnel {
        name: cfg.name.clone(),
        ns: interface_ns(cfg),
        v4: defaults.iter().any(|n| matches!(n, ipnet::IpNet::V4(_))),
        v6: defaults.iter().any(|n| matches!(n, ipnet::IpNet::V6(_))),
        ipv6_leak_protection: cfg.ipv6_leak_protection,
        // A fwmark of 0 ("off") is none: the table is chosen.
        fwmark: cfg.fwmark.filter(|m| *m != 0),
        addresses: cfg.ips.clone(),
    })
}

/// A route for each allowed IP of each peer (when `allowed_ips_as_routes`), deduplicated; a
/// full tunnel's /0 routes are not among them (they go in its own table).
pub fn routes(cfg: &Config) -> Vec<Route> {
    if !cfg.allowed_ips_as_routes {
        return Vec::new();
    }
    let full = cfg.full_tunnel();
    let mut seen = std::collections::HashSet::new();
    cfg.peers
        .iter()
        .flat_map(|p| p.allowed_ips.iter())
        .filter(|dst| !(full && dst.prefix_len() == 0))
        .filter(|dst| seen.insert(**dst))
        .map(|dst| Route::new(*dst, cfg.table.id, cfg.metric))
        .collect()
}
