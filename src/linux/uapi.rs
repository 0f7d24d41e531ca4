//! The cross-platform WireGuard UAPI spoken by wireguard-go and boringtun over
//! /var/run/wireguard/NAME.sock. A `set` is not atomic (lines before a bad one stay applied), so
//! requests are built only from values that were validated before.
//!
//! No maintained crate speaks it without pulling in an async runtime; it is a few lines of text.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;
use wg_exec_steps::{DeviceSettings, KernelError, Key, PeerSettings};
use zeroize::Zeroize;

pub const SOCKET_DIR: &str = "/var/run/wireguard";

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

pub fn set_peers(peers: &[PeerSettings]) -> String {
    let mut r = String::with_capacity(64 + peers.len() * 256);
    r.push_str("set=1\n");
    for p in peers {
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

fn send_to(path: &std::path::Path, text: &str) -> Result<(), KernelError> {
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
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| io("read from", e))?;
        if n == 0 {
            return Err(KernelError::new(format!(
                "UAPI {}: closed without an answer",
                path.display()
            )));
        }
        if let Some(code) = line.trim_end().strip_prefix("errno=") {
            let code: i32 = code.parse().unwrap_or(-libc::EPROTO);
            return match code {
                0 => Ok(()),
                c => Err(KernelError::from_errno(c.abs(), Some("UAPI set"))),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
