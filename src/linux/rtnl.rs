//! rtnetlink requests: links, addresses and routes, built with netlink-packet-route.

use super::nl::Conn;
use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::os::fd::RawFd;
use wg_exec_steps::{KernelError, LinkState, Route};

const RT_TABLE_UNSPEC: u8 = 0;

fn family(net: &IpNet) -> AddressFamily {
    match net {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    }
}

/// A link's index and MTU, or None when there is no link of that name.
pub fn get_link(conn: &mut Conn, name: &str) -> Result<Option<(u32, u32)>, KernelError> {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    match conn.request(RouteNetlinkMessage::GetLink(msg), 0) {
        Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(l) => {
                let mtu = l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::Mtu(m) => Some(*m),
                    _ => None,
                });
                Some((l.header.index, mtu.unwrap_or(0)))
            }
            _ => None,
        })),
        Err(e) if e.is_errno(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A link's index, MTU and up flag, or None when there is no link of that name.
pub fn link_state(conn: &mut Conn, name: &str) -> Result<Option<LinkState>, KernelError> {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    match conn.request(RouteNetlinkMessage::GetLink(msg), 0) {
        Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(l) => Some(LinkState {
                index: l.header.index,
                mtu: l
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        LinkAttribute::Mtu(m) => Some(*m),
                        _ => None,
                    })
                    .unwrap_or(0),
                up: l.header.flags.contains(LinkFlags::Up),
            }),
            _ => None,
        })),
        Err(e) if e.is_errno(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The addresses of link `index`, link-local ones left out.
pub fn addresses(conn: &mut Conn, index: u32) -> Result<Vec<IpNet>, KernelError> {
    let replies = conn.dump(|| RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
    let mut out = Vec::new();
    for r in replies {
        let RouteNetlinkMessage::NewAddress(a) = r else {
            continue;
        };
        if a.header.index != index {
            continue;
        }
        let addr = a.attributes.iter().find_map(|x| match x {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let addr = addr.or_else(|| {
            a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        });
        let Some(ip) = addr else { continue };
        let link_local = match ip {
            std::net::IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
            std::net::IpAddr::V4(v4) => v4.is_link_local(),
        };
        if link_local {
            continue;
        }
        if let Ok(net) = IpNet::new(ip, a.header.prefix_len) {
            out.push(net);
        }
    }
    Ok(out)
}

/// The routes through link `index` that someone added (not the kernel's own for addresses,
/// not the local table, not multicast), in every table.
pub fn routes_via(conn: &mut Conn, index: u32) -> Result<Vec<Route>, KernelError> {
    let mut out = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let replies = conn.dump(|| {
            let mut m = RouteMessage::default();
            m.header.address_family = family;
            RouteNetlinkMessage::GetRoute(m)
        })?;
        for r in replies {
            let RouteNetlinkMessage::NewRoute(m) = r else {
                continue;
            };
            let oif = m.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            if oif != Some(index)
                || m.header.protocol == RouteProtocol::Kernel
                || m.header.kind != RouteType::Unicast
            {
                continue;
            }
            let table = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Table(t) => Some(*t),
                    _ => None,
                })
                .unwrap_or(u32::from(m.header.table));
            if table == 255 {
                continue;
            }
            let dst = m.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                    Some(std::net::IpAddr::V4(*ip))
                }
                RouteAttribute::Destination(RouteAddress::Inet6(ip)) => {
                    Some(std::net::IpAddr::V6(*ip))
                }
                _ => None,
            });
            let dst = dst.unwrap_or(match family {
                AddressFamily::Inet6 => std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                _ => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            });
            let Ok(dst) = IpNet::new(dst, m.header.destination_prefix_length) else {
                continue;
            };
            let metric = m.attributes.iter().find_map(|a| match a {
                RouteAttribute::Priority(p) => Some(*p),
                _ => None,
            });
            // IPv6 routes get metric 1024 when none was given: that is "no metric".
            out.push(Route::new(dst, table, metric));
        }
    }
    Ok(out)
}

pub fn add_wireguard(conn: &mut Conn, name: &str) -> Result<(), KernelError> {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Wireguard,
        )]));
    conn.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
        .map(drop)
}

pub fn del_link(conn: &mut Conn, index: u32) -> Result<(), KernelError> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    conn.request(RouteNetlinkMessage::DelLink(msg), 0).map(drop)
}

fn set_link(
    conn: &mut Conn,
    index: u32,
    f: impl FnOnce(&mut LinkMessage),
) -> Result<(), KernelError> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    f(&mut msg);
    conn.request(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
}

pub fn set_netns(conn: &mut Conn, index: u32, fd: RawFd) -> Result<(), KernelError> {
    set_link(conn, index, |m| {
        m.attributes.push(LinkAttribute::NetNsFd(fd))
    })
}

pub fn set_mtu(conn: &mut Conn, index: u32, mtu: u32) -> Result<(), KernelError> {
    set_link(conn, index, |m| m.attributes.push(LinkAttribute::Mtu(mtu)))
}

pub fn set_up(conn: &mut Conn, index: u32, up: bool) -> Result<(), KernelError> {
    set_link(conn, index, |m| {
        m.header.change_mask = LinkFlags::Up;
        if up {
            m.header.flags = LinkFlags::Up;
        }
    })
}

fn address(index: u32, net: &IpNet) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = family(net);
    msg.header.prefix_len = net.prefix_len();
    msg.header.index = index;
    // As `ip address add` does for an address without a peer: local and address alike.
    msg.attributes.push(AddressAttribute::Local(net.addr()));
    msg.attributes.push(AddressAttribute::Address(net.addr()));
    msg
}

pub fn add_address(conn: &mut Conn, index: u32, net: &IpNet) -> Result<(), KernelError> {
    conn.request(
        RouteNetlinkMessage::NewAddress(address(index, net)),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .map(drop)
}

pub fn del_address(conn: &mut Conn, index: u32, net: &IpNet) -> Result<(), KernelError> {
    conn.request(RouteNetlinkMessage::DelAddress(address(index, net)), 0)
        .map(drop)
}

/// `ip route … DST dev INDEX table T [metric M]`: a scope-link unicast route, table ids above
/// 255 in RTA_TABLE.
pub fn route_message(index: u32, r: &Route, delete: bool) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(&r.dst);
    msg.header.destination_prefix_length = r.dst.prefix_len();
    msg.header.table = u8::try_from(r.table).unwrap_or(RT_TABLE_UNSPEC);
    if delete {
        msg.header.scope = RouteScope::NoWhere;
    } else {
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Link;
        msg.header.kind = RouteType::Unicast;
    }
    msg.attributes.push(RouteAttribute::Table(r.table));
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(
            r.dst.network(),
        )));
    msg.attributes.push(RouteAttribute::Oif(index));
    if let Some(m) = r.metric {
        msg.attributes.push(RouteAttribute::Priority(m));
    }
    msg
}

/// Replaces (or deletes) routes in one pipeline; one result per route.
pub fn routes(
    conn: &mut Conn,
    index: u32,
    routes: &[Route],
    delete: bool,
) -> Result<Vec<Result<(), KernelError>>, KernelError> {
    conn.pipeline(routes.iter().map(|r| {
        let msg = route_message(index, r, delete);
        match delete {
            true => (RouteNetlinkMessage::DelRoute(msg), 0),
            false => (
                RouteNetlinkMessage::NewRoute(msg),
                NLM_F_CREATE | NLM_F_REPLACE,
            ),
        }
    }))
}
