//! Endpoint names, resolved with getaddrinfo in the calling thread's namespace (the caller
//! enters the socket namespace when it is not the current one).
#![allow(unsafe_code)] // getaddrinfo, whose EAI codes std hides

use std::ffi::{CStr, CString};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wg_exec_steps::{Endpoint, KernelError};

/// How many times a failed lookup is retried: WG_ENDPOINT_RESOLUTION_RETRIES (a count or
/// "infinity"), as `wg` reads it. None = wg-exec's default (transient failures forever,
/// permanent ones never).
fn retries_from_env() -> Option<u64> {
    match std::env::var("WG_ENDPOINT_RESOLUTION_RETRIES")
        .ok()?
        .as_str()
    {
        "infinity" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// Resolves host:port with getaddrinfo in the calling thread's namespace (the caller enters the
/// socket namespace), retrying like `wg`.
pub fn resolve(ep: &Endpoint, stop: &AtomicBool) -> Result<SocketAddr, KernelError> {
    if let Ok(ip) = ep.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, ep.port));
    }
    let configured = retries_from_env();
    let mut delay = Duration::from_millis(200);
    let mut attempt: u64 = 0;
    loop {
        match getaddrinfo(&ep.host, ep.port) {
            Ok(addr) => return Ok(addr),
            Err((code, text)) => {
                let transient = code == libc::EAI_AGAIN;
                let allowed = match configured {
                    Some(n) => attempt < n,
                    None => transient,
                };
                if !allowed || stop.load(Ordering::SeqCst) {
                    let tries = attempt + 1;
                    return Err(KernelError::new(format!(
                        "{text} (after {tries} attempt{})",
                        if tries == 1 { "" } else { "s" }
                    )));
                }
                log::warn!("resolving {}: {text}; retrying in {delay:?}", ep.host);
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
        }
    }
}

/// getaddrinfo for UDP; the first result. Rust's ToSocketAddrs hides the EAI code, which
/// decides whether a failure is worth retrying.
fn getaddrinfo(host: &str, port: u16) -> Result<SocketAddr, (i32, String)> {
    let c_host = CString::new(host).map_err(|_| (libc::EAI_NONAME, "bad host".to_string()))?;
    let c_port = CString::new(port.to_string()).expect("digits");
    // SAFETY: zeroed addrinfo is a valid "no hints" value; we set the fields we need.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_DGRAM;
    hints.ai_flags = libc::AI_ADDRCONFIG;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated strings and hints; res is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), c_port.as_ptr(), &hints, &mut res) };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static string.
        let text = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
            .to_string_lossy()
            .into_owned();
        return Err((rc, text));
    }
    let mut out = None;
    let mut cur = res;
    while !cur.is_null() && out.is_none() {
        // SAFETY: cur is a node of the list getaddrinfo returned.
        let ai = unsafe { &*cur };
        out = match ai.ai_family {
            libc::AF_INET => {
                // SAFETY: AF_INET entries hold a sockaddr_in.
                let sa = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in) };
                Some(SocketAddr::new(
                    IpAddr::from(u32::from_be(sa.sin_addr.s_addr).to_be_bytes()),
                    port,
                ))
            }
            libc::AF_INET6 => {
                // SAFETY: AF_INET6 entries hold a sockaddr_in6.
                let sa = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in6) };
                Some(SocketAddr::new(IpAddr::from(sa.sin6_addr.s6_addr), port))
            }
            _ => None,
        };
        cur = ai.ai_next;
    }
    // SAFETY: res came from a successful getaddrinfo.
    unsafe { libc::freeaddrinfo(res) };
    out.ok_or((libc::EAI_NONAME, "no IPv4 or IPv6 address".into()))
}
