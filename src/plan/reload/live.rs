//! The live interface as a reload reads it, and the changes no reload can make to it (refused
//! before anything changes).

use crate::config::derived::{self, interface_ns};
use crate::config::Config;
use crate::journal::applied::{backend_name, Applied, FullTunnelShape};
use ipnet::IpNet;
use wg_exec_steps::{Kernel, KernelError, LinkState, LiveDevice, Route};

/// The interface as it is now.
#[derive(Debug, Clone)]
pub struct Live {
    pub device: LiveDevice,
    pub link: LinkState,
    pub addrs: Vec<IpNet>,
    pub routes: Vec<Route>,
}

/// Reads the live interface where the configuration (and the record) put it.
pub fn read_live(
    kernel: &mut dyn Kernel,
    cfg_ns: &wg_exec_steps::Netns,
    name: &str,
) -> Result<Option<Live>, KernelError> {
    let Some(link) = kernel.link_state(cfg_ns, name)? else {
        return Ok(None);
    };
    Ok(Some(Live {
        device: kernel.wg_get(cfg_ns, name)?,
        link,
        addrs: kernel.addr_list(cfg_ns, name)?,
        routes: kernel.route_list(cfg_ns, name)?,
    }))
}

/// The options that cannot change on a live interface, each with how it changed.
pub fn not_live(cfg: &Config, recorded: &Applied) -> Vec<String> {
    let mut out = Vec::new();
    let shown = |n: &wg_exec_steps::Netns| {
        Option::<String>::from(n.clone()).unwrap_or_else(|| "none".into())
    };
    let socket = derived::socket_ns(cfg);
    if socket != recorded.socket_namespace {
        out.push(format!(
            "socket_namespace ({} -> {})",
            shown(&recorded.socket_namespace),
            shown(&socket)
        ));
    }
    let iface = interface_ns(cfg);
    if iface != recorded.interface_namespace {
        out.push(format!(
            "interface_namespace ({} -> {})",
            shown(&recorded.interface_namespace),
            shown(&iface)
        ));
    }
    let shape = FullTunnelShape::of(cfg);
    if shape != recorded.full_tunnel {
        let shown = |s: &Option<FullTunnelShape>| {
            s.as_ref()
                .map_or_else(|| "no full tunnel".into(), |s| s.to_string())
        };
        out.push(format!(
            "the full tunnel ({} -> {})",
            shown(&recorded.full_tunnel),
            shown(&shape)
        ));
    }
    // DNS settings are set once, by up (a reload that changed them would have to undo and
    // redo them through the backend; down and up do).
    let dns = &cfg.dns;
    if *dns != recorded.dns {
        out.push(format!(
            "dns ([{}] -> [{}])",
            recorded.dns.entries().join(", "),
            dns.entries().join(", ")
        ));
    }
    let (backend, implementation) = backend_name(&cfg.backend);
    let (was, was_implementation) = backend_name(&recorded.backend);
    if backend != was {
        out.push(format!("backend ({was} -> {backend})"));
    } else if implementation != was_implementation {
        out.push(format!(
            "userspace_implementation ({was_implementation} -> {implementation})"
        ));
    }
    out
}

/// Whether `a` is an IPv6 address that `add` brings back with another prefix length.
pub(super) fn readdressed_v6(a: &IpNet, add: &[IpNet]) -> bool {
    matches!(a, IpNet::V6(_)) && add.iter().any(|n| n.addr() == a.addr())
}

/// The addresses wg-exec added that go, and that cannot go on a live interface: an IPv4
/// address sharing its subnet with one that stays or comes. The kernel takes the subnet's
/// secondaries with its primary (net.ipv4.conf.*.promote_secondaries is 0 by default) and,
/// when no IPv4 address is left, every IPv4 route through the link: no order of adds and
/// deletes keeps the interface whole, so reload refuses before changing anything.
pub fn not_live_addresses(cfg: &Config, recorded: &Applied, live: &Live) -> Vec<String> {
    let ours = super::recorded_addresses(recorded);
    let going: Vec<&IpNet> = live
        .addrs
        .iter()
        .filter(|a| ours.contains(a) && !cfg.ips.contains(a))
        .collect();
    let staying: Vec<&IpNet> = live
        .addrs
        .iter()
        .filter(|a| !going.contains(a))
        .chain(cfg.ips.iter())
        .collect();
    let mut out = Vec::new();
    let v4 = |a: &&IpNet| matches!(a, IpNet::V4(_));
    if going.iter().any(v4)
        && !staying.iter().any(v4)
        && derived::routes(cfg)
            .iter()
            .any(|r| matches!(r.dst, IpNet::V4(_)))
    {
        out.push("ips: the last IPv4 address goes while IPv4 routes stay".to_string());
    }
    for s in staying {
        for g in &going {
            let (IpNet::V4(g4), IpNet::V4(s4)) = (g, s) else {
                continue;
            };
            if g4.prefix_len() == s4.prefix_len() && g4.network() == s4.network() {
                let text = format!("ips: {g} goes while {s} stays in its subnet");
                if !out.contains(&text) {
                    out.push(text);
                }
            }
        }
    }
    out
}
