//! The record as wg-exec wrote it before it was typed (version 1, RON, IFACE.applied.ron):
//! addresses, routes and endpoints as display strings. Read only to convert it, once.

use super::*;

#[derive(Deserialize)]
struct V1 {
    version: u32,
    socket_namespace: Netns,
    interface_namespace: Netns,
    backend: String,
    userspace_implementation: String,
    addresses: Vec<IpNet>,
    mtu: Option<u32>,
    listen_port: Option<u16>,
    fwmark: Option<u32>,
    private_key: String,
    table: u32,
    metric: Option<u32>,
    allowed_ips_as_routes: bool,
    routes: Vec<IpNet>,
    endpoints: BTreeMap<PublicKey, String>,
    names: BTreeMap<PublicKey, String>,
    #[serde(default)]
    refresh: BTreeMap<PublicKey, Refresh>,
    #[serde(default)]
    resolved_endpoints: BTreeMap<PublicKey, SocketAddr>,
    #[serde(default)]
    full_tunnel: Option<String>,
    #[serde(default)]
    full_tunnel_table: Option<u32>,
    #[serde(default)]
    dns: Vec<String>,
}

/// "host:port" or "[v6]:port", as version 1 wrote an endpoint.
pub(super) fn endpoint(s: &str) -> Option<Endpoint> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some(Endpoint {
        host: host.to_string(),
        port: port.parse().ok()?,
    })
}

/// Version 1's full tunnel line: "FAMILIES, ipv6_leak_protection B, fwmark auto|0xN,
/// addresses [A, …]".
pub(super) fn full_tunnel(s: &str) -> Option<FullTunnelShape> {
    let (fams, rest) = s.split_once(", ipv6_leak_protection ")?;
    let (leak, rest) = rest.split_once(", fwmark ")?;
    let (mark, rest) = rest.split_once(", addresses [")?;
    let addrs = rest.strip_suffix(']')?;
    Some(FullTunnelShape {
        v4: fams.contains("0.0.0.0/0"),
        v6: fams.contains("::/0"),
        ipv6_leak_protection: leak.parse().ok()?,
        fwmark: match mark {
            "auto" => None,
            m => Some(u32::from_str_radix(m.strip_prefix("0x")?, 16).ok()?),
        },
        addresses: match addrs {
            "" => Vec::new(),
            a => a
                .split(", ")
                .map(|a| a.parse().ok())
                .collect::<Option<_>>()?,
        },
    })
}

pub(super) fn dns(entries: &[String]) -> Dns {
    let mut d = Dns::default();
    for e in entries {
        match (e.strip_prefix('~'), e.parse::<IpAddr>()) {
            (Some(domain), _) => d.routing.push(domain.to_string()),
            (None, Ok(addr)) => d.servers.push(addr),
            (None, Err(_)) => d.search.push(e.clone()),
        }
    }
    d
}

/// A version 1 record, converted.
pub fn parse(bytes: &[u8]) -> Result<Applied, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("is unreadable: {e}"))?;
    let v1 = ron::from_str::<V1>(text).map_err(|e| format!("is unreadable: {e}"))?;
    if v1.version != 1 {
        return Err(format!(
            "has format version {}; this wg-exec reads version {VERSION} (and 1 in a .ron record)",
            v1.version
        ));
    }
    let bad = |what: &str| format!("is not one wg-exec wrote: {what}");
    let backend = match v1.backend.as_str() {
        "Auto" => Backend::Auto {
            userspace: v1.userspace_implementation,
        },
        "Kernel" => Backend::Kernel,
        "Userspace" => Backend::Userspace {
            program: v1.userspace_implementation,
        },
        other => return Err(bad(&format!("backend {other:?}"))),
    };
    let endpoints = v1
        .endpoints
        .iter()
        .map(|(k, e)| {
            endpoint(e)
                .map(|e| (k.clone(), e))
                .ok_or_else(|| bad(&format!("endpoint {e:?}")))
        })
        .collect::<Result<_, _>>()?;
    let full_tunnel = match &v1.full_tunnel {
        None => None,
        Some(s) => Some(full_tunnel(s).ok_or_else(|| bad(&format!("full_tunnel {s:?}")))?),
    };
    checked(Applied {
        version: VERSION,
        socket_namespace: v1.socket_namespace,
        interface_namespace: v1.interface_namespace,
        backend,
        addresses: v1.addresses,
        mtu: v1.mtu,
        listen_port: v1.listen_port,
        fwmark: v1.fwmark,
        private_key: match v1.private_key.as_str() {
            "inline" => PrivateKey::Inline,
            p => PrivateKey::File(p.into()),
        },
        table: v1.table,
        metric: v1.metric,
        allowed_ips_as_routes: v1.allowed_ips_as_routes,
        routes: v1.routes,
        endpoints,
        names: v1
            .names
            .into_iter()
            .map(|(k, n)| {
                let named = n != k.as_str();
                (k, named.then_some(n))
            })
            .collect(),
        refresh: v1.refresh,
        resolved_endpoints: v1.resolved_endpoints,
        full_tunnel,
        full_tunnel_table: v1.full_tunnel_table,
        dns: dns(&v1.dns),
        earlier_routes: Vec::new(),
    })
}
