//! rtnetlink requests: links, addresses, routes and rules, built with netlink-packet-route.

use super::nl::Conn;
use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::collections::BTreeSet;
use std::os::fd::RawFd;
use wg_exec_steps::{KernelError, LinkState, PolicyRule, Route};

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

/// Every route of both families, each with its family. A kernel without IPv6 has no IPv6
/// routes to list (EAFNOSUPPORT). The kernel does not filter a dump by table unless strict
/// checking is on: callers sort the routes themselves.
fn dump_routes(conn: &mut Conn) -> Result<Vec<(AddressFamily, RouteMessage)>, KernelError> {
    let mut out = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let replies = match conn.dump(|| {
            let mut m = RouteMessage::default();
            m.header.address_family = family;
            RouteNetlinkMessage::GetRoute(m)
        }) {
            Ok(r) => r,
            Err(e) if family == AddressFamily::Inet6 && e.is_errno(libc::EAFNOSUPPORT) => continue,
            Err(e) => return Err(e),
        };
        out.extend(replies.into_iter().filter_map(|r| match r {
            RouteNetlinkMessage::NewRoute(m) => Some((family, m)),
            _ => None,
        }));
    }
    Ok(out)
}

/// A dumped route's table: RTA_TABLE, else the header's (ids up to 255).
fn table_of(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

/// A dumped route's destination prefix (a default route has no RTA_DST).
fn dst_of(m: &RouteMessage, family: AddressFamily) -> Option<IpNet> {
    let dst = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(std::net::IpAddr::V4(*ip)),
            RouteAttribute::Destination(RouteAddress::Inet6(ip)) => Some(std::net::IpAddr::V6(*ip)),
            _ => None,
        })
        .unwrap_or(match family {
            AddressFamily::Inet6 => std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            _ => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        });
    IpNet::new(dst, m.header.destination_prefix_length).ok()
}

/// The routes through link `index` that someone added (not the kernel's own for addresses,
/// not the local table, not multicast), in every table.
///
/// Every route of the namespace is dumped (at 10,000 peers that is 20,000 of them, all through
/// this link), so each reply is read where it lies: its header, its attributes' framing, and
/// only the four attributes wanted (RTA_OIF, RTA_TABLE, RTA_DST, RTA_PRIORITY) decoded by
/// netlink-packet-route, not every attribute of every route into a `RouteMessage`. A reply
/// whose header or attribute framing is short, or one of those four malformed, fails the read
/// ("bad netlink reply"), as before.
pub fn routes_via(conn: &mut Conn, index: u32) -> Result<Vec<Route>, KernelError> {
    let mut out = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let picked = conn.dump_picked(
            || {
                let mut m = RouteMessage::default();
                m.header.address_family = family;
                RouteNetlinkMessage::GetRoute(m)
            },
            |msg_type, body| match msg_type {
                RTM_NEWROUTE => route_via(body, family, index)
                    .map_err(|e| KernelError::new(format!("bad netlink reply: {e}"))),
                _ => Ok(None),
            },
        );
        match picked {
            Ok(routes) => out.extend(routes),
            Err(e) if family == AddressFamily::Inet6 && e.is_errno(libc::EAFNOSUPPORT) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

const RTM_NEWROUTE: u16 = 24;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
/// struct rtmsg.
const ROUTE_HEADER_LEN: usize = 12;

/// One dumped route's body (`rtmsg` and attributes) as a [`Route`] when it goes through link
/// `index` and is one [`routes_via`] keeps. `family` is the one the dump asked for.
fn route_via(
    body: &[u8],
    family: AddressFamily,
    index: u32,
) -> Result<Option<Route>, netlink_packet_core::DecodeError> {
    use netlink_packet_core::{NlasIterator, ParseableParametrized};
    use netlink_packet_route::route::{RouteHeader, RouteLwEnCapType};
    let header = RouteHeader::parse(body)?;
    let mut oif = None;
    let mut table = None;
    let mut dst = None;
    let mut metric = None;
    for nla in NlasIterator::new(&body[ROUTE_HEADER_LEN..]) {
        let nla = nla?;
        if !matches!(nla.kind(), RTA_OIF | RTA_TABLE | RTA_DST | RTA_PRIORITY) {
            continue;
        }
        let param = (header.address_family, header.kind, RouteLwEnCapType::None);
        // The first of each counts.
        match RouteAttribute::parse_with_param(&nla, param)? {
            RouteAttribute::Oif(i) => oif = oif.or(Some(i)),
            RouteAttribute::Table(t) => table = table.or(Some(t)),
            RouteAttribute::Priority(p) => metric = metric.or(Some(p)),
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                dst = dst.or(Some(std::net::IpAddr::V4(ip)))
            }
            RouteAttribute::Destination(RouteAddress::Inet6(ip)) => {
                dst = dst.or(Some(std::net::IpAddr::V6(ip)))
            }
            _ => {}
        }
    }
    if oif != Some(index)
        || header.protocol == RouteProtocol::Kernel
        || header.kind != RouteType::Unicast
    {
        return Ok(None);
    }
    // RTA_TABLE, else the header's (ids up to 255).
    let table = table.unwrap_or(u32::from(header.table));
    if table == 255 {
        return Ok(None);
    }
    // A default route has no RTA_DST.
    let dst = dst.unwrap_or(match family {
        AddressFamily::Inet6 => std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    });
    let Ok(dst) = IpNet::new(dst, header.destination_prefix_length) else {
        return Ok(None);
    };
    // IPv6 routes get metric 1024 when none was given: that is "no metric".
    Ok(Some(Route::new(dst, table, metric)))
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

fn rule_message(r: &PolicyRule) -> RuleMessage {
    let mut msg = RuleMessage::default();
    msg.header.family = match r.v6 {
        true => AddressFamily::Inet6,
        false => AddressFamily::Inet,
    };
    msg.header.action = RuleAction::ToTable;
    msg.header.table = u8::try_from(r.table).unwrap_or(RT_TABLE_UNSPEC);
    if r.invert {
        msg.header.flags = RuleFlags::Invert;
    }
    msg.attributes.push(RuleAttribute::Priority(r.priority));
    msg.attributes.push(RuleAttribute::Table(r.table));
    if let Some(m) = r.fwmark {
        msg.attributes.push(RuleAttribute::FwMark(m));
    }
    if let Some(p) = r.suppress_prefixlength {
        msg.attributes.push(RuleAttribute::SuppressPrefixLen(p));
    }
    msg
}

pub fn add_rule(conn: &mut Conn, r: &PolicyRule) -> Result<(), KernelError> {
    conn.request(
        RouteNetlinkMessage::NewRule(rule_message(r)),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .map(drop)
}

/// Deletes the rule with every field of `r`, priority included (the kernel compares only the
/// fields a request gives, so all of them are given).
pub fn del_rule(conn: &mut Conn, r: &PolicyRule) -> Result<(), KernelError> {
    conn.request(RouteNetlinkMessage::DelRule(rule_message(r)), 0)
        .map(drop)
}

/// Every rule of both families, as wg-exec models them (`other` for anything more).
pub fn rules(conn: &mut Conn) -> Result<Vec<PolicyRule>, KernelError> {
    let mut out = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let replies = match conn.dump(|| {
            let mut m = RuleMessage::default();
            m.header.family = family;
            RouteNetlinkMessage::GetRule(m)
        }) {
            Ok(r) => r,
            // A kernel without IPv6 (ipv6.disable=1) or without IPv6 policy routing has no
            // IPv6 rules to list; adding one says so precisely.
            Err(e) if family == AddressFamily::Inet6 && e.is_errno(libc::EAFNOSUPPORT) => continue,
            Err(e) => return Err(e),
        };
        for r in replies {
            let RouteNetlinkMessage::NewRule(m) = r else {
                continue;
            };
            let mut rule = PolicyRule {
                v6: m.header.family == AddressFamily::Inet6,
                priority: 0,
                table: u32::from(m.header.table),
                fwmark: None,
                invert: m.header.flags.contains(RuleFlags::Invert),
                suppress_prefixlength: None,
                other: m.header.action != RuleAction::ToTable
                    || m.header.src_len != 0
                    || m.header.dst_len != 0
                    || m.header.tos != 0,
            };
            for a in &m.attributes {
                match a {
                    RuleAttribute::Priority(p) => rule.priority = *p,
                    RuleAttribute::Table(t) => rule.table = *t,
                    RuleAttribute::FwMark(f) => rule.fwmark = Some(*f),
                    // Dumps always carry it; all ones means "not set".
                    RuleAttribute::SuppressPrefixLen(p) if *p != u32::MAX => {
                        rule.suppress_prefixlength = Some(*p)
                    }
                    RuleAttribute::SuppressPrefixLen(_)
                    | RuleAttribute::Protocol(_)
                    | RuleAttribute::FwMask(u32::MAX) => {}
                    _ => rule.other = true,
                }
            }
            out.push(rule);
        }
    }
    Ok(out)
}

/// Every table a route of either family or a rule (its table or fwmark) uses.
pub fn tables_in_use(conn: &mut Conn) -> Result<BTreeSet<u32>, KernelError> {
    let mut used: BTreeSet<u32> = dump_routes(conn)?
        .iter()
        .map(|(_, m)| table_of(m))
        .collect();
    for r in rules(conn)? {
        used.insert(r.table);
        used.extend(r.fwmark);
    }
    Ok(used)
}

/// `ip route add|del unreachable DST table T`.
pub fn unreachable(conn: &mut Conn, dst: &IpNet, table: u32, add: bool) -> Result<(), KernelError> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(dst);
    msg.header.destination_prefix_length = dst.prefix_len();
    msg.header.table = u8::try_from(table).unwrap_or(RT_TABLE_UNSPEC);
    msg.header.kind = RouteType::Unreachable;
    if add {
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
    } else {
        msg.header.scope = RouteScope::NoWhere;
    }
    msg.attributes.push(RouteAttribute::Table(table));
    if dst.prefix_len() > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(
                dst.network(),
            )));
    }
    match add {
        true => conn.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ),
        false => conn.request(RouteNetlinkMessage::DelRoute(msg), 0),
    }
    .map(drop)
}

fn route_mtu_of(m: &RouteMessage) -> (Option<u32>, Option<u32>) {
    let mtu = m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Metrics(ms) => ms.iter().find_map(|x| match x {
            RouteMetric::Mtu(v) if *v > 0 => Some(*v),
            _ => None,
        }),
        _ => None,
    });
    let oif = m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    });
    (mtu, oif)
}

fn link_mtu_by_index(conn: &mut Conn, index: u32) -> Result<Option<u32>, KernelError> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    let replies = conn.request(RouteNetlinkMessage::GetLink(msg), 0)?;
    Ok(replies.into_iter().find_map(|r| match r {
        RouteNetlinkMessage::NewLink(l) => l.attributes.iter().find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        }),
        _ => None,
    }))
}

/// The MTU of the path to `dst` (`ip route get`): the route's `mtu`, else its device's; for
/// the unspecified IPv4 address, main's first IPv4 default route. None without a route.
pub fn route_mtu(conn: &mut Conn, dst: std::net::IpAddr) -> Result<Option<u32>, KernelError> {
    let found = if dst.is_unspecified() && dst.is_ipv4() {
        let replies = conn.dump(|| {
            let mut m = RouteMessage::default();
            m.header.address_family = AddressFamily::Inet;
            RouteNetlinkMessage::GetRoute(m)
        })?;
        replies.into_iter().find_map(|r| match r {
            RouteNetlinkMessage::NewRoute(m)
                if m.header.destination_prefix_length == 0
                    && m.header.kind == RouteType::Unicast
                    && m.header.table == 254 =>
            {
                Some(route_mtu_of(&m))
            }
            _ => None,
        })
    } else {
        let mut m = RouteMessage::default();
        m.header.address_family = match dst {
            std::net::IpAddr::V4(_) => AddressFamily::Inet,
            std::net::IpAddr::V6(_) => AddressFamily::Inet6,
        };
        m.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        match conn.request(RouteNetlinkMessage::GetRoute(m), 0) {
            Ok(replies) => replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewRoute(m) => Some(route_mtu_of(&m)),
                _ => None,
            }),
            Err(e) if e.is_errno(libc::ENETUNREACH) || e.is_errno(libc::EHOSTUNREACH) => None,
            Err(e) => return Err(e),
        }
    };
    match found {
        None => Ok(None),
        Some((Some(mtu), _)) => Ok(Some(mtu)),
        Some((None, Some(oif))) => link_mtu_by_index(conn, oif),
        Some((None, None)) => Ok(None),
    }
}

/// Every route in `table`, both families, any device or type: (destination, unreachable).
pub fn table_routes(conn: &mut Conn, table: u32) -> Result<Vec<(IpNet, bool)>, KernelError> {
    Ok(dump_routes(conn)?
        .into_iter()
        .filter(|(_, m)| table_of(m) == table)
        .filter_map(|(family, m)| {
            dst_of(&m, family).map(|net| (net, m.header.kind == RouteType::Unreachable))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};
    use netlink_packet_route::route::RouteCacheInfo;

    fn message(
        family: AddressFamily,
        prefix: u8,
        protocol: RouteProtocol,
        kind: RouteType,
        table: u8,
        attributes: Vec<RouteAttribute>,
    ) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = family;
        m.header.destination_prefix_length = prefix;
        m.header.protocol = protocol;
        m.header.kind = kind;
        m.header.table = table;
        m.attributes = attributes;
        m
    }

    fn bytes(m: &RouteMessage) -> Vec<u8> {
        let mut b = vec![0; m.buffer_len()];
        m.emit(&mut b);
        b
    }

    /// What routes_via kept of a route decoded whole (the way it read routes before).
    fn whole(body: &[u8], family: AddressFamily, index: u32) -> Option<Route> {
        let m = RouteMessage::parse(body).ok()?;
        let oif = m.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(i) => Some(*i),
            _ => None,
        });
        if oif != Some(index)
            || m.header.protocol == RouteProtocol::Kernel
            || m.header.kind != RouteType::Unicast
            || table_of(&m) == 255
        {
            return None;
        }
        let metric = m.attributes.iter().find_map(|a| match a {
            RouteAttribute::Priority(p) => Some(*p),
            _ => None,
        });
        Some(Route::new(dst_of(&m, family)?, table_of(&m), metric))
    }

    #[test]
    fn a_route_read_in_place_is_the_route_read_whole() {
        use AddressFamily::{Inet, Inet6};
        let v4 = |s: &str| RouteAttribute::Destination(RouteAddress::Inet(s.parse().unwrap()));
        let v6 = |s: &str| RouteAttribute::Destination(RouteAddress::Inet6(s.parse().unwrap()));
        let cache = RouteAttribute::CacheInfo(RouteCacheInfo::parse(&[0u8; 32][..]).unwrap());
        let (boot, kernel) = (RouteProtocol::Boot, RouteProtocol::Kernel);
        let unicast = RouteType::Unicast;
        let cases = [
            // Through link 7, table main, with a metric and the kernel's other attributes.
            message(
                Inet,
                32,
                boot,
                unicast,
                254,
                vec![
                    v4("198.18.0.1"),
                    RouteAttribute::Oif(7),
                    RouteAttribute::Priority(5),
                    cache.clone(),
                ],
            ),
            // RTA_TABLE over the header's table; the IPv6 default route has no RTA_DST.
            message(
                Inet6,
                0,
                boot,
                unicast,
                252,
                vec![
                    RouteAttribute::Table(1000),
                    RouteAttribute::Oif(7),
                    RouteAttribute::Priority(1024),
                ],
            ),
            message(
                Inet6,
                128,
                boot,
                unicast,
                254,
                vec![v6("2001:db8:4::1"), RouteAttribute::Oif(7)],
            ),
            // Left out: another link, the kernel's own, the local table, not unicast.
            message(
                Inet,
                24,
                boot,
                unicast,
                254,
                vec![v4("192.0.2.0"), RouteAttribute::Oif(8)],
            ),
            message(
                Inet,
                24,
                kernel,
                unicast,
                254,
                vec![v4("192.0.2.0"), RouteAttribute::Oif(7)],
            ),
            message(
                Inet,
                32,
                boot,
                unicast,
                255,
                vec![v4("192.0.2.1"), RouteAttribute::Oif(7)],
            ),
            message(
                Inet,
                32,
                boot,
                RouteType::Local,
                254,
                vec![v4("192.0.2.1"), RouteAttribute::Oif(7)],
            ),
            // No output link at all (a multipath route), and a prefix longer than the family's.
            message(Inet, 32, boot, unicast, 254, vec![v4("192.0.2.1")]),
            message(
                Inet,
                40,
                boot,
                unicast,
                254,
                vec![v4("192.0.2.1"), RouteAttribute::Oif(7)],
            ),
        ];
        let mut kept = 0;
        for m in &cases {
            let family = m.header.address_family;
            let b = bytes(m);
            let read = route_via(&b, family, 7).unwrap();
            assert_eq!(read, whole(&b, family, 7), "{m:?}");
            kept += usize::from(read.is_some());
        }
        assert_eq!(kept, 3);
        let r = route_via(&bytes(&cases[1]), Inet6, 7).unwrap().unwrap();
        assert_eq!(
            (r.dst, r.table, r.metric),
            ("::/0".parse().unwrap(), 1000, None)
        );
    }

    #[test]
    fn a_short_or_malformed_route_reply_is_an_error_not_a_panic() {
        let m = message(
            AddressFamily::Inet,
            32,
            RouteProtocol::Boot,
            RouteType::Unicast,
            254,
            vec![
                RouteAttribute::Destination(RouteAddress::Inet("198.18.0.1".parse().unwrap())),
                RouteAttribute::Oif(7),
            ],
        );
        let b = bytes(&m);
        // Every truncation: an error or a route, never a panic; a cut header is an error.
        for len in 0..b.len() {
            let r = route_via(&b[..len], AddressFamily::Inet, 7);
            if len < ROUTE_HEADER_LEN {
                assert!(r.is_err(), "{len}");
            }
        }
        // An attribute longer than the reply, and an RTA_OIF of 2 bytes.
        let mut long = b.clone();
        long[ROUTE_HEADER_LEN..ROUTE_HEADER_LEN + 2].copy_from_slice(&200u16.to_ne_bytes());
        assert!(route_via(&long, AddressFamily::Inet, 7).is_err());
        let mut short_oif = b[..ROUTE_HEADER_LEN].to_vec();
        short_oif.extend_from_slice(&6u16.to_ne_bytes());
        short_oif.extend_from_slice(&RTA_OIF.to_ne_bytes());
        short_oif.extend_from_slice(&[7, 0, 0, 0]);
        assert!(route_via(&short_oif, AddressFamily::Inet, 7).is_err());
    }
}
