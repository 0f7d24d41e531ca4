//! The cross-platform WireGuard UAPI spoken by wireguard-go and boringtun over
//! /var/run/wireguard/NAME.sock. A `set` is not atomic (lines before a bad one stay applied), so
//! requests are built only from values that were validated before.
//!
//! No maintained crate speaks it without pulling in an async runtime; it is a few lines of text.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};
use wg_exec_steps::{
    AllowedIpsChange, DeviceSettings, KernelError, Key, LiveDevice, LivePeer, PeerSettings,
    PeerUpdate,
};
use zeroize::{Zeroize, Zeroizing};

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
    let text = exchange(&socket_path(name), "get=1\n\n", DEADLINE)?;
    parse_get(&text)
}

/// At most this much of an answer is shown in an error (never a key: those lines are named).
const SHOWN: usize = 80;

/// A line of an answer for an error message: lossy UTF-8, shortened, control characters escaped.
fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(SHOWN)]);
    let mut out: String = text.chars().flat_map(char::escape_debug).collect();
    if line.len() > SHOWN {
        out.push('…');
    }
    out
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// 64 hex digits as a key, read per byte as wg(8) does (no text slicing, no panic).
fn hex_key(v: &[u8], secret: bool) -> Option<Key> {
    if v.len() != 64 {
        return None;
    }
    let mut b = [0u8; 32];
    for (byte, pair) in b.iter_mut().zip(v.chunks_exact(2)) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => *byte = hi << 4 | lo,
            _ => {
                b.zeroize();
                return None;
            }
        }
    }
    let k = Key::from_bytes(b, secret);
    b.zeroize();
    Some(k)
}

fn number<T: std::str::FromStr>(v: &[u8]) -> Option<T> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn all_zero(v: &[u8]) -> bool {
    v.len() == 64 && v.iter().all(|&c| c == b'0')
}

/// The lines of `text` (split at '\n', the last one unterminated), found with the standard
/// library's memchr (`BufRead::skip_until` on a byte slice): a `get` answer at 10,000 peers has
/// some 4 MB in 130,000 lines.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    use std::io::BufRead;
    let mut rest = text;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let line = rest;
        // Reading from a byte slice cannot fail.
        let n = rest.skip_until(b'\n').unwrap_or(rest.len());
        match line[..n].strip_suffix(b"\n") {
            Some(l) => Some(l),
            None => {
                done = true;
                Some(&line[..n])
            }
        }
    })
}

/// Where the line holding `errno=` starts, in `text[from..]` (`from` a line start), and where
/// the first line not yet complete starts.
fn errno_line(text: &[u8], from: usize) -> (Option<usize>, usize) {
    let mut start = from;
    let complete = match text.iter().rposition(|&c| c == b'\n') {
        Some(last) if last >= from => last + 1,
        _ => return (None, from),
    };
    for line in lines(&text[from..complete]) {
        if line.starts_with(b"errno=") {
            return (Some(start), start);
        }
        start += line.len() + 1;
        if start >= complete {
            break;
        }
    }
    (None, complete)
}

/// Reads a `get=1` answer (without its `errno=` line). Bytes, not text: any byte sequence gives
/// a device or an error naming the line, never a panic.
pub(crate) fn parse_get(text: &[u8]) -> Result<LiveDevice, KernelError> {
    let bad = |line: &[u8]| KernelError::new(format!("UAPI get: cannot read `{}`", shown(line)));
    let secret = |name: &str| KernelError::new(format!("UAPI get: cannot read `{name}=…`"));
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
    for line in lines(text) {
        let Some(eq) = line.iter().position(|&c| c == b'=') else {
            continue;
        };
        let (k, v) = (&line[..eq], &line[eq + 1..]);
        match k {
            b"private_key" => {
                if !all_zero(v) {
                    dev.private_key = Some(hex_key(v, true).ok_or_else(|| secret("private_key"))?);
                }
            }
            b"own_public_key" => {
                boringtun = true;
                dev.public_key = Some(hex_key(v, false).ok_or_else(|| bad(line))?);
            }
            b"listen_port" => dev.listen_port = number(v).ok_or_else(|| bad(line))?,
            b"fwmark" => dev.fwmark = number(v).ok_or_else(|| bad(line))?,
            b"public_key" => {
                dev.peers.push(LivePeer {
                    public_key: hex_key(v, false).ok_or_else(|| bad(line))?,
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
                let (Some(p), Some(handshake)) = (dev.peers.last_mut(), handshakes.last_mut())
                else {
                    continue;
                };
                match k {
                    b"preshared_key" if !all_zero(v) => {
                        p.preshared_key =
                            Some(hex_key(v, true).ok_or_else(|| secret("preshared_key"))?);
                    }
                    b"endpoint" => p.endpoint = number(v),
                    b"persistent_keepalive_interval" => {
                        p.persistent_keepalive = number(v).ok_or_else(|| bad(line))?
                    }
                    b"allowed_ip" => p
                        .allowed_ips
                        .push(number::<ipnet::IpNet>(v).ok_or_else(|| bad(line))?.trunc()),
                    b"last_handshake_time_sec" => {
                        *handshake = number(v).ok_or_else(|| bad(line))?
                    }
                    b"rx_bytes" => p.rx_bytes = number(v).ok_or_else(|| bad(line))?,
                    b"tx_bytes" => p.tx_bytes = number(v).ok_or_else(|| bad(line))?,
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

/// The largest answer read. wireguard-go 0.0.20220316 answered `get=1` for 10,000 peers, each
/// with a preshared key, an endpoint, a keepalive and 4 allowed IPs (2 IPv4, 2 IPv6), in
/// 4,148,684 bytes (about 415 per peer, some 32 per allowed IP; measured in a test namespace).
/// 64 MiB is 16 times that: 10,000 peers with some 200 allowed IPs each, or 100,000 peers with
/// 4. A longer answer is refused rather than read without end.
pub const MAX_ANSWER: usize = 64 << 20;

/// How long one exchange may take, in all (a daemon that trickles bytes does not reset it).
const DEADLINE: Duration = Duration::from_secs(60);

/// Sends a request and returns the whole answer (what `get=1` reports; nothing for a `set`),
/// checking its errno. The answer is bounded in size ([`MAX_ANSWER`]) and time (`deadline`),
/// and wiped when dropped (it holds the private key).
fn exchange(
    path: &std::path::Path,
    text: &str,
    deadline: Duration,
) -> Result<Zeroizing<Vec<u8>>, KernelError> {
    exchange_capped(path, text, deadline, MAX_ANSWER)
}

fn exchange_capped(
    path: &std::path::Path,
    text: &str,
    deadline: Duration,
    cap: usize,
) -> Result<Zeroizing<Vec<u8>>, KernelError> {
    let io = |what: &str, e: std::io::Error| {
        KernelError::new(format!("UAPI {what} {}: {e}", path.display()))
    };
    let until = Instant::now() + deadline;
    let left = || {
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                KernelError::new(format!(
                    "UAPI {}: no complete answer within {} s",
                    path.display(),
                    deadline.as_secs_f32()
                ))
            })
    };
    let mut stream = UnixStream::connect(path).map_err(|e| io("connect to", e))?;
    stream
        .set_write_timeout(Some(left()?))
        .map_err(|e| io("timeout on", e))?;
    stream
        .write_all(text.as_bytes())
        .map_err(|e| io("write to", e))?;
    count(text);
    // Reserved once, so that the key is not left behind in buffers given up by growing.
    let mut answer = Zeroizing::new(Vec::with_capacity(64 << 10));
    let mut chunk = Zeroizing::new([0u8; 64 << 10]);
    // Where the first line not yet looked at starts.
    let mut line_start = 0;
    loop {
        stream
            .set_read_timeout(Some(left()?))
            .map_err(|e| io("timeout on", e))?;
        let n = match stream.read(&mut chunk[..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                left()?;
                return Err(io("read from", e));
            }
            Err(e) => return Err(io("read from", e)),
        };
        if n == 0 {
            return Err(KernelError::new(format!(
                "UAPI {}: closed without an answer",
                path.display()
            )));
        }
        if answer.len() + n > cap {
            return Err(KernelError::new(format!(
                "UAPI {}: an answer longer than {cap} bytes, refused",
                path.display()
            )));
        }
        if answer.len() + n > answer.capacity() {
            // Grow by hand: copy into a new zeroizing buffer, the old one is wiped on drop.
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                (answer.capacity() * 2).max(answer.len() + n).min(cap),
            ));
            bigger.extend_from_slice(&answer);
            answer = bigger;
        }
        answer.extend_from_slice(&chunk[..n]);
        let (errno_at, next) = errno_line(&answer, line_start);
        line_start = next;
        if let Some(at) = errno_at {
            let line = lines(&answer[at..]).next().unwrap_or_default();
            let code = line.strip_prefix(b"errno=").unwrap_or_default();
            let code: i32 = number(code).unwrap_or(-libc::EPROTO);
            answer.truncate(at);
            return match code {
                0 => Ok(answer),
                c => {
                    let what = match text.starts_with("get=") {
                        true => "UAPI get",
                        false => "UAPI set",
                    };
                    Err(KernelError::from_errno(c.saturating_abs(), Some(what)))
                }
            };
        }
    }
}

fn send_to(path: &std::path::Path, text: &str) -> Result<(), KernelError> {
    exchange(path, text, DEADLINE).map(drop)
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
        let d = parse_get(go.as_bytes()).unwrap();
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
        let d = parse_get(boring.as_bytes()).unwrap();
        assert!(!d.updates_in_place);
        assert_eq!(d.public_key, Some(Key::from_bytes([0x22; 32], false)));
        assert_eq!(d.peers[0].handshake_age, Some(7));
    }

    #[test]
    fn hostile_answers_are_errors_not_panics() {
        // 64 bytes, but "é" straddles the second hex pair: a text slice there panicked.
        let key = format!("a{}a", "é".repeat(31));
        assert_eq!(key.len(), 64);
        for (line, said) in [
            (format!("public_key={key}"), format!("`public_key={key}`")),
            (
                format!("own_public_key={}", "zz".repeat(32)),
                "`own_public_key=zzzz".into(),
            ),
            (format!("private_key={key}"), "`private_key=…`".into()),
            (
                format!("preshared_key={}", "1".repeat(65)),
                "`preshared_key=…`".into(),
            ),
            ("listen_port=ÿþ".into(), "`listen_port=ÿþ`".into()),
        ] {
            let text = match line.starts_with("preshared") {
                // A peer's secret is read only after its public key.
                true => format!("public_key={}\n{line}\n", "01".repeat(32)),
                false => line.clone(),
            };
            let e = parse_get(text.as_bytes()).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("UAPI get: cannot read {said}")),
                "{e}"
            );
        }
        // Bytes that are not UTF-8 at all, and a peer's line before any peer: ignored or refused.
        assert!(parse_get(b"listen_port=\xff\xfe\n").is_err());
        assert!(parse_get(b"allowed_ip=192.0.2.0/24\nrx_bytes=x\n").is_ok());
        assert!(parse_get(b"\xff=\xff\n=\n==\n\n").is_ok());
    }

    /// A stand-in daemon on a socket in a fresh directory that answers `get` with `answer`.
    fn stand_in(answer: impl FnOnce(UnixStream) + Send + 'static) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wg0.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = [0u8; 7];
            s.read_exact(&mut request).unwrap();
            answer(s);
        });
        (dir, path)
    }

    #[test]
    fn an_endless_answer_stops_at_the_cap() {
        let (_dir, path) = stand_in(|mut s| {
            let line = b"allowed_ip=192.0.2.0/24\n".repeat(1000);
            while s.write_all(&line).is_ok() {}
        });
        let started = Instant::now();
        let e = exchange_capped(&path, "get=1\n\n", Duration::from_secs(20), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("an answer longer than 1048576 bytes, refused"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_silent_or_trickling_daemon_meets_the_deadline() {
        let (_dir, path) = stand_in(|s| {
            std::thread::sleep(Duration::from_secs(3));
            drop(s)
        });
        let started = Instant::now();
        let e = exchange(&path, "get=1\n\n", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no complete answer within 0.3 s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));

        // One byte every 50 ms never ends a line: the deadline counts the whole exchange.
        let (_dir, path) = stand_in(|mut s| {
            while s.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let started = Instant::now();
        let e = exchange(&path, "get=1\n\n", Duration::from_millis(500))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no complete answer within 0.5 s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn lines_split_as_split_does() {
        for text in [
            &b""[..],
            b"\n",
            b"a",
            b"a\n",
            b"a\nb",
            b"a\n\nb\n\n",
            b"\n\nerrno=0\n\n",
        ] {
            let want: Vec<&[u8]> = text.split(|&c| c == b'\n').collect();
            assert_eq!(lines(text).collect::<Vec<_>>(), want, "{text:?}");
        }
        // The errno line is found only at a line start, and only once complete.
        let t = b"x=errno=1\nlisten_port=7\nerrno=0\n\n";
        assert_eq!(errno_line(t, 0), (Some(24), 24));
        assert_eq!(errno_line(&t[..30], 0), (None, 24));
        assert_eq!(errno_line(&t[..31], 10), (None, 24));
        assert_eq!(errno_line(&t[..32], 10), (Some(24), 24));
        assert_eq!(errno_line(b"abc", 0), (None, 0));
    }

    #[test]
    fn an_answer_ends_at_its_errno_line() {
        let (_dir, path) = stand_in(|mut s| {
            s.write_all(b"listen_port=7\nerrno=0\n\n").unwrap();
            std::thread::sleep(Duration::from_secs(1));
        });
        let answer = exchange(&path, "get=1\n\n", Duration::from_secs(5)).unwrap();
        assert_eq!(answer.as_slice(), b"listen_port=7\n");
        let (_dir, path) = stand_in(|mut s| s.write_all(b"errno=-22\n\n").unwrap());
        let e = exchange(&path, "get=1\n\n", Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("UAPI get"), "{e}");
        let (_dir, path) = stand_in(|mut s| s.write_all(b"listen_port=7\n").unwrap());
        let e = exchange(&path, "get=1\n\n", Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().ends_with("closed without an answer"), "{e}");
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
