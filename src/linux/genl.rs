//! The generic netlink family "wireguard": device settings and peers, split across as many
//! messages as needed, the way `wg` does (a peer whose allowed IPs do not fit continues in the
//! next message, appending).
//!
//! netlink-packet-wireguard has the attributes but no splitting, so the splitter is ours.

use super::nl::Conn;
use netlink_packet_core::Emitable;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use netlink_packet_wireguard::WireguardTimeSpec;
use netlink_packet_wireguard::{
    WireguardAddressFamily, WireguardAllowedIp, WireguardAllowedIpAttr, WireguardAttribute,
    WireguardCmd, WireguardMessage, WireguardPeer, WireguardPeerAttribute, WireguardPeerFlags,
};
use wg_exec_steps::{
    AllowedIpsChange, DeviceSettings, KernelError, Key, LiveDevice, LivePeer, PeerSettings,
    PeerUpdate,
};

/// Largest message we build (netlink header and genl header included).
pub const MESSAGE_LIMIT: usize = 32 * 1024;
/// netlink header (16) + genl header (4).
const HEADERS: usize = 20;
/// A nested attribute's own header.
const NEST: usize = 4;

/// The id of the "wireguard" family; ENOENT when the kernel has no WireGuard.
pub fn family_id(conn: &mut Conn) -> Result<u16, KernelError> {
    let msg = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName("wireguard".into())],
    });
    let replies = conn.request(msg, 0)?;
    replies
        .into_iter()
        .flat_map(|m| m.payload.nlas)
        .find_map(|a| match a {
            GenlCtrlAttrs::FamilyId(id) => Some(id),
            _ => None,
        })
        .ok_or_else(|| KernelError::new("the kernel did not return the wireguard family id"))
}

fn message(attributes: Vec<WireguardAttribute>) -> WireguardMessage {
    WireguardMessage {
        cmd: WireguardCmd::SetDevice,
        attributes,
    }
}

pub fn set_device(ifname: &str, s: &DeviceSettings) -> WireguardMessage {
    let mut attrs = vec![WireguardAttribute::IfName(ifname.into())];
    if let Some(k) = &s.private_key {
        attrs.push(WireguardAttribute::PrivateKey(*k.as_bytes()));
    }
    if let Some(p) = s.listen_port {
        attrs.push(WireguardAttribute::ListenPort(p));
    }
    if let Some(m) = s.fwmark {
        attrs.push(WireguardAttribute::Fwmark(m));
    }
    message(attrs)
}

/// An all-zero private key removes the key; port and fwmark back to 0.
pub fn clear_device(ifname: &str) -> WireguardMessage {
    message(vec![
        WireguardAttribute::IfName(ifname.into()),
        WireguardAttribute::PrivateKey([0; 32]),
        WireguardAttribute::ListenPort(0),
        WireguardAttribute::Fwmark(0),
    ])
}

/// Overwrites key bytes in a message before it is dropped.
pub fn scrub(msg: &mut WireguardMessage) {
    for a in &mut msg.attributes {
        match a {
            WireguardAttribute::PrivateKey(k) => k.fill(0),
            WireguardAttribute::Peers(peers) => {
                for p in peers {
                    for pa in &mut p.0 {
                        if let WireguardPeerAttribute::PresharedKey(k) = pa {
                            k.fill(0);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn allowed_ip(net: &ipnet::IpNet) -> WireguardAllowedIp {
    let fam = match net {
        ipnet::IpNet::V4(_) => WireguardAddressFamily::Ipv4,
        ipnet::IpNet::V6(_) => WireguardAddressFamily::Ipv6,
    };
    WireguardAllowedIp(vec![
        WireguardAllowedIpAttr::Family(fam),
        WireguardAllowedIpAttr::IpAddr(net.network()),
        WireguardAllowedIpAttr::Cidr(net.prefix_len()),
    ])
}

/// Builds messages of at most `limit` bytes, each `[IfName, Peers([...])]`.
struct Splitter<'a> {
    ifname: &'a str,
    limit: usize,
    base: usize,
    done: Vec<WireguardMessage>,
    peers: Vec<WireguardPeer>,
    size: usize,
}

impl<'a> Splitter<'a> {
    fn new(ifname: &'a str, limit: usize) -> Splitter<'a> {
        let base = HEADERS + WireguardAttribute::IfName(ifname.into()).buffer_len() + NEST;
        Splitter {
            ifname,
            limit,
            base,
            done: Vec::new(),
            peers: Vec::new(),
            size: base,
        }
    }

    fn flush(&mut self) {
        if !self.peers.is_empty() {
            let peers = std::mem::take(&mut self.peers);
            self.done.push(message(vec![
                WireguardAttribute::IfName(self.ifname.into()),
                WireguardAttribute::Peers(peers),
            ]));
        }
        self.size = self.base;
    }

    /// Adds a peer: `head` attributes (key, flags, psk, endpoint, keepalive) and its allowed
    /// IPs, continuing in further messages when they do not fit.
    fn peer(&mut self, key: [u8; 32], head: Vec<WireguardPeerAttribute>, ips: &[ipnet::IpNet]) {
        self.peer_then(key, head, ips, None)
    }

    /// [`Splitter::peer`], with `cont` as the flags of continuation parts (an update keeps
    /// UPDATE_ONLY there, so that no part can create the peer again).
    fn peer_then(
        &mut self,
        key: [u8; 32],
        head: Vec<WireguardPeerAttribute>,
        ips: &[ipnet::IpNet],
        cont: Option<WireguardPeerFlags>,
    ) {
        let head_len: usize = head.iter().map(|a| a.buffer_len()).sum();
        let ip_nest = if ips.is_empty() { 0 } else { NEST };
        let first_ip = ips.first().map(|n| allowed_ip(n).buffer_len()).unwrap_or(0);
        if self.size + NEST + head_len + ip_nest + first_ip > self.limit {
            self.flush();
        }
        let mut attrs = head;
        let mut size = self.size + NEST + head_len + ip_nest;
        let mut chunk = Vec::new();
        for net in ips {
            let a = allowed_ip(net);
            if size + a.buffer_len() > self.limit && !chunk.is_empty() {
                attrs.push(WireguardPeerAttribute::AllowedIps(std::mem::take(
                    &mut chunk,
                )));
                self.peers.push(WireguardPeer(std::mem::take(&mut attrs)));
                self.flush();
                // The continuation: same key, no replace flag, so the IPs are appended.
                attrs.push(WireguardPeerAttribute::PublicKey(key));
                size =
                    self.size + NEST + WireguardPeerAttribute::PublicKey(key).buffer_len() + NEST;
                if let Some(f) = cont {
                    let flags = WireguardPeerAttribute::Flags(f);
                    size += flags.buffer_len();
                    attrs.push(flags);
                }
            }
            size += a.buffer_len();
            chunk.push(a);
        }
        if !chunk.is_empty() {
            attrs.push(WireguardPeerAttribute::AllowedIps(chunk));
        }
        self.peers.push(WireguardPeer(attrs));
        self.size = size;
    }
}

/// Messages that add (or update) `peers`, none larger than `limit` bytes.
pub fn set_peers(ifname: &str, peers: &[PeerSettings], limit: usize) -> Vec<WireguardMessage> {
    let mut s = Splitter::new(ifname, limit);
    for p in peers {
        let key = *p.public_key.as_bytes();
        let mut head = vec![
            WireguardPeerAttribute::PublicKey(key),
            WireguardPeerAttribute::Flags(WireguardPeerFlags::ReplaceAllowedIps),
        ];
        if let Some(psk) = &p.preshared_key {
            head.push(WireguardPeerAttribute::PresharedKey(*psk.as_bytes()));
        }
        if let Some(ep) = p.endpoint {
            head.push(WireguardPeerAttribute::Endpoint(ep));
        }
        if let Some(k) = p.persistent_keepalive {
            head.push(WireguardPeerAttribute::PersistentKeepalive(k));
        }
        s.peer(key, head, &p.allowed_ips);
    }
    s.flush();
    s.done
}

/// Messages that change existing peers: UPDATE_ONLY, and only the attributes that changed.
pub fn update_peers(ifname: &str, updates: &[PeerUpdate], limit: usize) -> Vec<WireguardMessage> {
    let mut s = Splitter::new(ifname, limit);
    for u in updates {
        let p = &u.peer;
        let key = *p.public_key.as_bytes();
        let mut flags = WireguardPeerFlags::UpdateOnly;
        if u.allowed_ips == AllowedIpsChange::Replace {
            flags |= WireguardPeerFlags::ReplaceAllowedIps;
        }
        let mut head = vec![
            WireguardPeerAttribute::PublicKey(key),
            WireguardPeerAttribute::Flags(flags),
        ];
        if u.preshared_key {
            // 32 zero bytes remove it.
            let psk = p.preshared_key.as_ref().map(|k| *k.as_bytes());
            head.push(WireguardPeerAttribute::PresharedKey(psk.unwrap_or([0; 32])));
        }
        if u.endpoint {
            if let Some(ep) = p.endpoint {
                head.push(WireguardPeerAttribute::Endpoint(ep));
            }
        }
        if u.persistent_keepalive {
            head.push(WireguardPeerAttribute::PersistentKeepalive(
                p.persistent_keepalive.unwrap_or(0),
            ));
        }
        let ips: &[ipnet::IpNet] = match &u.allowed_ips {
            AllowedIpsChange::Unchanged => &[],
            AllowedIpsChange::Append(new) => new,
            AllowedIpsChange::Replace => &p.allowed_ips,
        };
        s.peer_then(key, head, ips, Some(WireguardPeerFlags::UpdateOnly));
    }
    s.flush();
    s.done
}

/// The GET request of a device (a dump: peers may span several replies).
pub fn get_device(ifname: &str) -> WireguardMessage {
    WireguardMessage {
        cmd: WireguardCmd::GetDevice,
        attributes: vec![WireguardAttribute::IfName(ifname.into())],
    }
}

fn age(t: &WireguardTimeSpec) -> Option<u64> {
    if t.seconds == 0 && t.nano_seconds == 0 {
        return None;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Wall-clock time, which can jump: a handshake "in the future" is fresh.
    Some(now.saturating_sub(u64::try_from(t.seconds).unwrap_or(0)))
}

/// Merges the replies of a GET dump into one device; a peer split across replies is joined.
pub fn parse_device(replies: Vec<WireguardMessage>) -> LiveDevice {
    let mut dev = LiveDevice {
        updates_in_place: true,
        ..LiveDevice::default()
    };
    for m in replies {
        for a in m.attributes {
            match a {
                WireguardAttribute::PrivateKey(mut k) => {
                    if k != [0; 32] {
                        dev.private_key = Some(Key::from_bytes(k, true));
                    }
                    k.fill(0);
                }
                WireguardAttribute::PublicKey(k) if k != [0; 32] => {
                    dev.public_key = Some(Key::from_bytes(k, false));
                }
                WireguardAttribute::ListenPort(p) => dev.listen_port = p,
                WireguardAttribute::Fwmark(f) => dev.fwmark = f,
                WireguardAttribute::Peers(peers) => {
                    for p in peers {
                        merge_peer(&mut dev.peers, p);
                    }
                }
                _ => {}
            }
        }
    }
    dev
}

fn merge_peer(peers: &mut Vec<LivePeer>, p: WireguardPeer) {
    let mut key = None;
    let mut live = LivePeer {
        public_key: Key::from_bytes([0; 32], false),
        preshared_key: None,
        endpoint: None,
        persistent_keepalive: 0,
        allowed_ips: Vec::new(),
        handshake_age: None,
        rx_bytes: 0,
        tx_bytes: 0,
    };
    for a in p.0 {
        match a {
            WireguardPeerAttribute::PublicKey(k) => key = Some(k),
            WireguardPeerAttribute::PresharedKey(mut k) => {
                if k != [0; 32] {
                    live.preshared_key = Some(Key::from_bytes(k, true));
                }
                k.fill(0);
            }
            WireguardPeerAttribute::Endpoint(ep) => live.endpoint = Some(ep),
            WireguardPeerAttribute::PersistentKeepalive(k) => live.persistent_keepalive = k,
            WireguardPeerAttribute::LastHandshake(t) => live.handshake_age = age(&t),
            WireguardPeerAttribute::RxBytes(b) => live.rx_bytes = b,
            WireguardPeerAttribute::TxBytes(b) => live.tx_bytes = b,
            WireguardPeerAttribute::AllowedIps(ips) => {
                for ip in ips {
                    let mut addr = None;
                    let mut cidr = None;
                    for attr in ip.0 {
                        match attr {
                            WireguardAllowedIpAttr::IpAddr(a) => addr = Some(a),
                            WireguardAllowedIpAttr::Cidr(c) => cidr = Some(c),
                            _ => {}
                        }
                    }
                    if let (Some(a), Some(c)) = (addr, cidr) {
                        if let Ok(net) = ipnet::IpNet::new(a, c) {
                            live.allowed_ips.push(net.trunc());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let Some(key) = key else { return };
    live.public_key = Key::from_bytes(key, false);
    // A peer continued from the previous reply: its allowed IPs are appended.
    match peers.last_mut() {
        Some(last) if last.public_key == live.public_key => {
            last.allowed_ips.extend(live.allowed_ips)
        }
        _ => peers.push(live),
    }
}

/// Messages that remove peers by public key.
pub fn remove_peers(ifname: &str, keys: &[Key], limit: usize) -> Vec<WireguardMessage> {
    let mut s = Splitter::new(ifname, limit);
    for k in keys {
        let key = *k.as_bytes();
        let head = vec![
            WireguardPeerAttribute::PublicKey(key),
            WireguardPeerAttribute::Flags(WireguardPeerFlags::RemoveMe),
        ];
        s.peer(key, head, &[]);
    }
    s.flush();
    s.done
}

/// Sends messages in order, stopping at the first failure.
pub fn send_all(
    conn: &mut Conn,
    family: u16,
    msgs: Vec<WireguardMessage>,
) -> Result<(), KernelError> {
    let mut msgs = msgs.into_iter();
    while let Some(m) = msgs.next() {
        let mut genl = GenlMessage::from_payload(m);
        genl.set_resolved_family_id(family);
        if let Err(e) = conn.request_then(genl, 0, |g| scrub(&mut g.payload)) {
            // The messages not sent still hold keys.
            for mut rest in msgs {
                scrub(&mut rest);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Serialized size of a message as it goes to the kernel.
#[cfg(test)]
fn wire_len(m: &WireguardMessage) -> usize {
    HEADERS + m.buffer_len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
    use std::net::SocketAddr;

    fn key(i: u32) -> Key {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_be_bytes());
        b[31] = 0x42;
        Key::from_bytes(b, false)
    }

    fn peer(i: u32, ips: usize) -> PeerSettings {
        PeerSettings {
            public_key: key(i),
            preshared_key: Some(Key::from_bytes([7; 32], true)),
            endpoint: Some(SocketAddr::from(([198, 51, 100, 1], 51820))),
            persistent_keepalive: Some(25),
            allowed_ips: (0..ips)
                .map(|j| {
                    if j % 2 == 0 {
                        format!("198.18.{}.{}/32", j / 256 % 256, j % 256)
                            .parse()
                            .unwrap()
                    } else {
                        format!("2001:db8::{:x}:{:x}/128", i, j).parse().unwrap()
                    }
                })
                .collect(),
        }
    }

    /// Serializes, checks the size, parses back and returns (key, ips, had_flags) per peer part.
    fn round_trip(msgs: &[WireguardMessage], limit: usize) -> Vec<(Key, Vec<ipnet::IpNet>, bool)> {
        let mut parts = Vec::new();
        for m in msgs {
            let mut genl = GenlMessage::from_payload(m.clone());
            genl.set_resolved_family_id(33);
            let mut nl =
                NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(genl));
            nl.finalize();
            let mut buf = vec![0; nl.buffer_len()];
            nl.serialize(&mut buf);
            assert!(
                buf.len() <= limit,
                "message of {} bytes over {limit}",
                buf.len()
            );
            assert_eq!(buf.len(), wire_len(m));
            let back = NetlinkMessage::<GenlMessage<WireguardMessage>>::deserialize(&buf).unwrap();
            let NetlinkPayload::InnerMessage(g) = back.payload else {
                panic!()
            };
            for a in &g.payload.attributes {
                if let WireguardAttribute::Peers(ps) = a {
                    for p in ps {
                        let mut k = None;
                        let mut ips = Vec::new();
                        let mut flags = false;
                        for pa in &p.0 {
                            match pa {
                                WireguardPeerAttribute::PublicKey(b) => {
                                    k = Some(Key::from_bytes(*b, false))
                                }
                                WireguardPeerAttribute::Flags(_) => flags = true,
                                WireguardPeerAttribute::AllowedIps(list) => {
                                    for ip in list {
                                        let mut addr = None;
                                        let mut cidr = 0;
                                        for x in &ip.0 {
                                            match x {
                                                WireguardAllowedIpAttr::IpAddr(a) => {
                                                    addr = Some(*a)
                                                }
                                                WireguardAllowedIpAttr::Cidr(c) => cidr = *c,
                                                _ => {}
                                            }
                                        }
                                        ips.push(ipnet::IpNet::new(addr.unwrap(), cidr).unwrap());
                                    }
                                }
                                _ => {}
                            }
                        }
                        parts.push((k.unwrap(), ips, flags));
                    }
                }
            }
        }
        parts
    }

    /// Merges continuation parts back into peers; checks that only first parts carry flags.
    fn merged(parts: Vec<(Key, Vec<ipnet::IpNet>, bool)>) -> Vec<(Key, Vec<ipnet::IpNet>)> {
        let mut out: Vec<(Key, Vec<ipnet::IpNet>)> = Vec::new();
        for (k, ips, flags) in parts {
            match out.last_mut() {
                Some((last, all)) if *last == k => {
                    assert!(!flags, "a continuation must not replace allowed IPs");
                    all.extend(ips);
                }
                _ => {
                    assert!(flags, "the first part of a peer carries its flags");
                    out.push((k, ips));
                }
            }
        }
        out
    }

    #[test]
    fn many_peers_split_and_read_back_completely() {
        let peers: Vec<PeerSettings> = (0..2000).map(|i| peer(i, 2)).collect();
        let msgs = set_peers("wg0", &peers, MESSAGE_LIMIT);
        assert!(msgs.len() > 1, "2000 peers need several messages");
        let back = merged(round_trip(&msgs, MESSAGE_LIMIT));
        assert_eq!(back.len(), 2000);
        for (p, (k, ips)) in peers.iter().zip(&back) {
            assert_eq!(&p.public_key, k);
            assert_eq!(&p.allowed_ips, ips);
        }
    }

    #[test]
    fn one_peer_with_thousands_of_allowed_ips_continues_across_messages() {
        let peers = vec![peer(1, 2500), peer(2, 3)];
        let msgs = set_peers("wg0", &peers, 4096);
        assert!(msgs.len() >= 20, "{} messages", msgs.len());
        let back = merged(round_trip(&msgs, 4096));
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].1, peers[0].allowed_ips);
        assert_eq!(back[1].1, peers[1].allowed_ips);
    }

    #[test]
    fn removal_messages_name_every_key() {
        let keys: Vec<Key> = (0..3000).map(key).collect();
        let msgs = remove_peers("wg0", &keys, 4096);
        let back: Vec<Key> = round_trip(&msgs, 4096).into_iter().map(|p| p.0).collect();
        assert_eq!(back, keys);
    }
}
