//! The text of `wg-exec status` (without `--json`): the interface, its peers, then the drift.

use super::Status;

/// The status as people read it.
pub fn text(s: &Status) -> String {
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
