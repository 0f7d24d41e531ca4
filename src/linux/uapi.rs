//! The cross-platform WireGuard UAPI spoken by wireguard-go and boringtun over
//! /var/run/wireguard/NAME.sock. A `set` is not atomic (lines before a bad one stay applied), so
//! requests are built only from values that were validated before.
//!
//! No maintained crate speaks it without pulling in an async runtime; it is a few lines of text.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use wg_exec_steps::{
    AllowedIpsChange, DeviceSettings, KernelError, Key, LiveDevice, LivePeer, PeerSettings,
    PeerUpdate,
};
use zeroize::Zeroize;

pub const SOCKET_DIR: &str = "/var/run/wireguard";

/// `set` and `get` exchanges sent by this process, for the debug log.
static WRITES: AtomicUsize = AtomicUsize::new(0);
static READS: AtomicUsize = AtomicUsize::new(0);

/// (writes, reads) sent so far.
pub fn sent() -> (usize, usize) {
    (WRITES.load(Relaxed), READS.load(Relaxed))
}

fn count(text: &str) {
    match text.starts_with("get=") {
        true => READS.fetch_add(1, Relaxed),
        false => WRITES.fetch_add(1, Relaxed),
    };
}

pub fn socket_path(name: &str) -> PathBuf {
    PathBuf::from(SOCKET_DIR).join(format!("{name}.sock"))
}

pub fn set_device(s: &DeviceSettings) -> String {
    let mut r = String::from("set=1\n");
    if let Some(k) = &s.private_key {
        r.push_str(&format!("private_key={}\n", k.to_hex()));
    }
    if let Some(p) = s.listen_port {
        r.push_str(&format!("listen_port={p}\n"));
    }
    if let Some(m) = s.fwmark {
        r.push_str(&format!("fwmark={m}\n"));
    }
    r.push('\n');
    r
}

pub fn clear_device() -> String {
    format!(
        "set=1\nprivate_key={}\nlisten_port=0\nfwmark=0\n\n",
        "0".repeat(64)
    )
}

/// Peers with a keepalive last: wireguard-go (0.0.20220316) does not reset its "keepalive
/// turned on" flag between the peers of one `set`, so every peer after one that turns it on
/// would start a handshake (and retry it for 90 s).
fn keepalives_last<T>(items: &[T], keepalive: impl Fn(&T) -> bool) -> Vec<&T> {
    let (with, without): (Vec<&T>, Vec<&T>) = items.iter().partition(|i| keepalive(i));
    without.into_iter().chain(with).collect()
}

pub fn set_peers(peers: &[PeerSettings]) -> String {
    let mut r = String::with_capacity(64 + peers.len() * 256);
    r.push_str("set=1\n");
    for p in keepalives_last(peers, |p| p.persistent_keepalive.is_some_and(|k| k > 0)) {
        r.push_str("public_key=");
        r.push_str(&p.public_key.to_hex());
        r.push_str("\nreplace_allowed_ips=true\n");
        if let Some(k) = &p.preshared_key {
            r.push_str(&format!("preshared_key={}\n", k.to_hex()));
        }
        if let Some(ep) = p.endpoint {
            r.push_str(&format!("endpoint={ep}\n"));
        }
        if let Some(k) = p.persistent_keepalive {
            r.push_str(&format!("persistent_keepalive_interval={k}\n"));
        }
        for ip in &p.allowed_ips {
            r.push_str(&format!(
                "allowed_ip={}/{}\n",
                ip.network(),
                ip.prefix_len()
            ));
        }
    }
    r.push('\n');
    r
}

fn allowed_line(r: &mut String, ip: &ipnet::IpNet) {
    r.push_str(&format!(
        "allowed_ip={}/{}\n",
        ip.network(),
        ip.prefix_len()
    ));
}

/// Updates of existing peers: `update_only`, and only what changed.
pub fn update_peers(updates: &[PeerUpdate]) -> String {
    let mut r = String::from("set=1\n");
    let turns_on = |u: &PeerUpdate| {
        u.persistent_keepalive && u.peer.persistent_keepalive.is_some_and(|k| k > 0)
    };
    for u in keepalives_last(updates, turns_on) {
        let p = &u.peer;
        r.push_str(&format!(
            "public_key={}\nupdate_only=true\n",
            p.public_key.to_hex()
        ));
        if u.preshared_key {
            let hex = p
                .preshared_key
                .as_ref()
                .map(|k| k.to_hex())
                .unwrap_or_else(|| "0".repeat(64));
            r.push_str(&format!("preshared_key={hex}\n"));
        }
        if let (true, Some(ep)) = (u.endpoint, p.endpoint) {
            r.push_str(&format!("endpoint={ep}\n"));
        }
        if u.persistent_keepalive {
            r.push_str(&format!(
                "persistent_keepalive_interval={}\n",
                p.persistent_keepalive.unwrap_or(0)
            ));
        }
        match &u.allowed_ips {
            AllowedIpsChange::Unchanged => {}
            AllowedIpsChange::Append(new) => new.iter().for_each(|ip| allowed_line(&mut r, ip)),
            AllowedIpsChange::Replace => {
                r.push_str("replace_allowed_ips=true\n");
                p.allowed_ips.iter().for_each(|ip| allowed_line(&mut r, ip));
            }
        }
    }
    r.push('\n');
    r
}

/// `get=1` and its answer as a device. wireguard-go reports its private key and wall-clock
/// handshake times; boringtun-cli reports `own_public_key`, handshake ages, and cannot update a
/// peer in place.
pub fn get(name: &str) -> Result<LiveDevice, KernelError> {
    let mut text = exchange(&socket_path(name), "get=1\n\n")?;
    let dev = parse_get(&text);
    text.zeroize();
    dev
}

fn parse_get(text: &str) -> Result<LiveDevice, KernelError> {
    let bad = |line: &str| KernelError::new(format!("UAPI get: cannot read `{line}`"));
    let key = |v: &str, secret: bool, line: &str| {
        let mut b = [0u8; 32];
        if v.len() != 64 {
            return Err(bad(line));
        }
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&v[2 * i..2 * i + 2], 16).map_err(|_| bad(line))?;
        }
        let k = Key::from_bytes(b, secret);
        b.zeroize();
        Ok(k)
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut dev = LiveDevice {
        updates_in_place: true,
        ..LiveDevice::default()
    };
    let mut boringtun = false;
    let mut handshakes: Vec<u64> = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "private_key" => {
                if v != "0".repeat(64) {
                    dev.private_key = Some(key(v, true, "private_key=…")?);
                }
            }
            "own_public_key" => {
                boringtun = true;
                dev.public_key = Some(key(v, false, line)?);
            }
            "listen_port" => dev.listen_port = v.parse().map_err(|_| bad(line))?,
            "fwmark" => dev.fwmark = v.parse().map_err(|_| bad(line))?,
            "public_key" => {
                dev.peers.push(LivePeer {
                    public_key: key(v, false, line)?,
                    preshared_key: None,
                    endpoint: None,
                    persistent_keepalive: 0,
                    allowed_ips: Vec::new(),
                    handshake_age: None,
                    rx_bytes: 0,
                    tx_bytes: 0,
                });
                handshakes.push(0);
            }
            _ => {
                let Some(p) = dev.peers.last_mut() else {
                    continue;
                };
                match k {
                    "preshared_key" if v != "0".repeat(64) => {
                        p.preshared_key = Some(key(v, true, "preshared_key=…")?);
                    }
                    "endpoint" => p.endpoint = v.parse().ok(),
                    "persistent_keepalive_interval" => {
                        p.persistent_keepalive = v.parse().map_err(|_| bad(line))?
                    }
                    "allowed_ip" => p
                        .allowed_ips
                        .push(v.parse::<ipnet::IpNet>().map_err(|_| bad(line))?.trunc()),
                    "last_handshake_time_sec" => {
                        *handshakes.last_mut().expect("pushed with the peer") =
                            v.parse().map_err(|_| bad(line))?
                    }
                    "rx_bytes" => p.rx_bytes = v.parse().map_err(|_| bad(line))?,
                    "tx_bytes" => p.tx_bytes = v.parse().map_err(|_| bad(line))?,
                    _ => {}
                }
            }
        }
    }
    for (p, t) in dev.peers.iter_mut().zip(handshakes) {
        p.handshake_age = match (t, boringtun) {
            (0, _) => None,
            // boringtun-cli reports the time since the handshake.
            (t, true) => Some(t),
            (t, false) => Some(now.saturating_sub(t)),
        };
    }
    dev.updates_in_place = !boringtun;
    Ok(dev)
}

pub fn remove_peers(keys: &[Key]) -> String {
    let mut r = String::from("set=1\n");
    for k in keys {
        r.push_str(&format!("public_key={}\nremove=true\n", k.to_hex()));
    }
    r.push('\n');
    r
}

/// Sends one request and reads the `errno=N` reply. The request text is wiped afterwards.
pub fn request(name: &str, mut text: String) -> Result<(), KernelError> {
    let result = send(name, &text);
    text.zeroize();
    result
}

/// `get=1`: succeeds once the implementation serves requests (its device fully set up). A
/// connect alone is not enough: the socket accepts connections before it is served.
pub fn ready(path: &std::path::Path) -> bool {
    send_to(path, "get=1\n\n").is_ok()
}

fn send(name: &str, text: &str) -> Result<(), KernelError> {
    send_to(&socket_path(name), text)
}

/// Sends a request and returns the whole answer (what `get=1` reports; nothing for a `set`),
/// checking its errno.
fn exchange(path: &std::path::Path, text: &str) -> Result<String, KernelError> {
    let io = |what: &str, e: std::io::Error| {
        KernelError::new(format!("UAPI {what} {}: {e}", path.display()))
    };
    let mut stream = UnixStream::connect(path).map_err(|e| io("connect to", e))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| io("timeout on", e))?;
    stream
        .write_all(text.as_bytes())
        .map_err(|e| io("write to", e))?;
    count(text);
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| io("read from", e))?;
        if n == 0 {
            answer.zeroize();
            return Err(KernelError::new(format!(
                "UAPI {}: closed without an answer",
                path.display()
            )));
        }
        if let Some(code) = line.trim_end().strip_prefix("errno=") {
            let code: i32 = code.parse().unwrap_or(-libc::EPROTO);
            line.zeroize();
            return match code {
                0 => Ok(answer),
                c => {
                    answer.zeroize();
                    let what = match text.starts_with("get=") {
                        true => "UAPI get",
                        false => "UAPI set",
                    };
                    Err(KernelError::from_errno(c.abs(), Some(what)))
                }
            };
        }
        answer.push_str(&line);
    }
}

fn send_to(path: &std::path::Path, text: &str) -> Result<(), KernelError> {
    exchange(path, text).map(|mut answer| answer.zeroize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_answers_of_both_implementations_read_back() {
        let go = format!(
            "private_key={}\nlisten_port=51820\nfwmark=119\npublic_key={}\npreshared_key={}\nprotocol_version=1\nendpoint=203.0.113.2:51821\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=92\nrx_bytes=0\npersistent_keepalive_interval=25\nallowed_ip=192.0.2.2/32\nallowed_ip=2001:db8:1::2/128\n",
            "11".repeat(32),
            "01".repeat(32),
            "0".repeat(64)
        );
        let d = parse_get(&go).unwrap();
        assert!(d.updates_in_place);
        assert_eq!((d.listen_port, d.fwmark), (51820, 119));
        assert_eq!(d.private_key, Some(Key::from_bytes([0x11; 32], true)));
        let p = &d.peers[0];
        assert_eq!(p.public_key, Key::from_bytes([1; 32], false));
        assert_eq!(p.preshared_key, None);
        assert_eq!(p.endpoint, Some("203.0.113.2:51821".parse().unwrap()));
        assert_eq!(
            (p.persistent_keepalive, p.tx_bytes, p.handshake_age),
            (25, 92, None)
        );
        assert_eq!(p.allowed_ips.len(), 2);

        let boring = format!(
            "own_public_key={}\nlisten_port=51820\npublic_key={}\nlast_handshake_time_sec=7\nallowed_ip=192.0.2.0/24\n",
            "22".repeat(32),
            "01".repeat(32)
        );
        let d = parse_get(&boring).unwrap();
        assert!(!d.updates_in_place);
        assert_eq!(d.public_key, Some(Key::from_bytes([0x22; 32], false)));
        assert_eq!(d.peers[0].handshake_age, Some(7));
    }

    #[test]
    fn updates_send_only_what_changed() {
        let peer = PeerSettings {
            public_key: Key::from_bytes([1; 32], false),
            preshared_key: None,
            endpoint: Some("203.0.113.9:51820".parse().unwrap()),
            persistent_keepalive: Some(10),
            allowed_ips: vec!["192.0.2.0/24".parse().unwrap()],
        };
        let u = PeerUpdate {
            peer: peer.clone(),
            preshared_key: false,
            endpoint: true,
            persistent_keepalive: false,
            allowed_ips: AllowedIpsChange::Append(vec!["198.18.0.0/15".parse().unwrap()]),
        };
        assert_eq!(
            update_peers(&[u]),
            format!(
                "set=1\npublic_key={}\nupdate_only=true\nendpoint=203.0.113.9:51820\nallowed_ip=198.18.0.0/15\n\n",
                "01".repeat(32)
            )
        );
        let u = PeerUpdate {
            peer,
            preshared_key: true,
            endpoint: false,
            persistent_keepalive: true,
            allowed_ips: AllowedIpsChange::Replace,
        };
        assert_eq!(
            update_peers(&[u]),
            format!(
                "set=1\npublic_key={}\nupdate_only=true\npreshared_key={}\npersistent_keepalive_interval=10\nreplace_allowed_ips=true\nallowed_ip=192.0.2.0/24\n\n",
                "01".repeat(32),
                "0".repeat(64)
            )
        );
    }

    #[test]
    fn peer_request_text() {
        let p = PeerSettings {
            public_key: Key::from_bytes([1; 32], false),
            preshared_key: Some(Key::from_bytes([2; 32], true)),
            endpoint: Some("[2001:db8::1]:51820".parse().unwrap()),
            persistent_keepalive: Some(25),
            allowed_ips: vec![
                "192.0.2.0/24".parse().unwrap(),
                "2001:db8:1::/48".parse().unwrap(),
            ],
        };
        let text = set_peers(&[p]);
        assert_eq!(
            text,
            format!(
                "set=1\npublic_key={}\nreplace_allowed_ips=true\npreshared_key={}\nendpoint=[2001:db8::1]:51820\npersistent_keepalive_interval=25\nallowed_ip=192.0.2.0/24\nallowed_ip=2001:db8:1::/48\n\n",
                "01".repeat(32),
                "02".repeat(32)
            )
        );
        assert_eq!(
            remove_peers(&[Key::from_bytes([1; 32], false)]),
            format!("set=1\npublic_key={}\nremove=true\n\n", "01".repeat(32))
        );
    }
}
