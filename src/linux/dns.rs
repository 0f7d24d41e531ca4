//! A link's DNS settings on the host: systemd-resolved's D-Bus API when its bus name has an
//! owner (set, then read back and compared), else a `resolvconf` program fed as wg-quick feeds
//! it. Neither involves a secret.

use super::child;
use super::dbus::{Bus, DbusError, Value, Writer};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use wg_exec_steps::{DnsBackend, DnsSettings, KernelError};

const RESOLVE1: &str = "org.freedesktop.resolve1";
const MANAGER_PATH: &str = "/org/freedesktop/resolve1";
const MANAGER: &str = "org.freedesktop.resolve1.Manager";
const LINK: &str = "org.freedesktop.resolve1.Link";

fn kernel_error(e: DbusError) -> KernelError {
    KernelError::new(e.to_string())
}

/// Which backend serves the host: resolved when the bus answers and its name has an owner,
/// else a resolvconf program on PATH.
pub fn available() -> Option<DnsBackend> {
    if resolved_running() {
        return Some(DnsBackend::Resolved);
    }
    resolvconf_program().map(|_| DnsBackend::Resolvconf)
}

fn resolved_running() -> bool {
    let Ok(mut bus) = Bus::system() else {
        return false;
    };
    let mut w = Writer::default();
    w.str(RESOLVE1);
    matches!(
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            "s",
            w.buf,
        )
        .as_deref(),
        Ok([Value::Int(1)])
    )
}

/// `resolvconf` on the PATH children get.
fn resolvconf_program() -> Option<PathBuf> {
    std::env::split_paths(&child::path())
        .map(|d| d.join("resolvconf"))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn manager(
    bus: &mut Bus,
    member: &str,
    signature: &str,
    body: Writer,
) -> Result<Vec<Value>, DbusError> {
    bus.call(RESOLVE1, MANAGER_PATH, MANAGER, member, signature, body.buf)
}

fn with_index(index: u32) -> Writer {
    let mut w = Writer::default();
    w.i32(index as i32);
    w
}

/// Domains, then servers, then default-route (domains first, as resolved advises, so that the
/// servers are never used without them), then read back. A failure reverts the link.
pub fn resolved_set(index: u32, settings: &DnsSettings) -> Result<(), KernelError> {
    let mut bus = Bus::system().map_err(kernel_error)?;
    // resolved learns of a new link from rtnetlink, a moment after it exists: "Link N not
    // known" (NoSuchLink) is retried for up to 10 s (a busy or emulated machine; the wait is
    // only spent while resolved does not know the link).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut result = set_and_verify(&mut bus, index, settings);
    while matches!(&result, Err(e) if e.message.contains("NoSuchLink"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
        result = set_and_verify(&mut bus, index, settings);
    }
    if result.is_err() {
        if let Err(e) = manager(&mut bus, "RevertLink", "i", with_index(index)) {
            log::warn!("reverting link {index} in systemd-resolved after a failure: {e}");
        }
    }
    result
}

fn set_and_verify(bus: &mut Bus, index: u32, s: &DnsSettings) -> Result<(), KernelError> {
    let mut w = with_index(index);
    w.array(8, |w| {
        for (name, routing) in s.domains() {
            w.begin_struct();
            w.str(&name);
            w.bool(routing);
        }
    });
    manager(bus, "SetLinkDomains", "ia(sb)", w)
        .map_err(|e| KernelError::new(format!("SetLinkDomains: {e}")))?;
    let mut w = with_index(index);
    w.array(8, |w| {
        for server in &s.servers {
            w.begin_struct();
            let (family, bytes) = family_bytes(server);
            w.i32(family);
            w.array(1, |w| w.buf.extend_from_slice(&bytes));
        }
    });
    manager(bus, "SetLinkDNS", "ia(iay)", w)
        .map_err(|e| KernelError::new(format!("SetLinkDNS: {e}")))?;
    let mut w = with_index(index);
    w.bool(s.default_route);
    manager(bus, "SetLinkDefaultRoute", "ib", w)
        .map_err(|e| KernelError::new(format!("SetLinkDefaultRoute: {e}")))?;
    let live = read_back(bus, index)
        .map_err(|e| KernelError::new(format!("read the link's settings back: {e}")))?;
    let want = Live::of(s);
    match live == want {
        true => Ok(()),
        false => Err(KernelError::new(format!(
            "systemd-resolved holds other settings than were set: servers {:?}, domains {:?}, default-route {} (wanted servers {:?}, domains {:?}, default-route {})",
            live.servers, live.domains, live.default_route, want.servers, want.domains, want.default_route
        ))),
    }
}

fn family_bytes(ip: &IpAddr) -> (i32, Vec<u8>) {
    match ip {
        IpAddr::V4(a) => (libc::AF_INET, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6, a.octets().to_vec()),
    }
}

/// A link's settings as resolved reports them, in a form that compares: servers sorted, domains
/// lower-cased without their final dot, sorted.
#[derive(Debug, PartialEq, Eq)]
struct Live {
    servers: Vec<IpAddr>,
    domains: Vec<(String, bool)>,
    default_route: bool,
}

fn normal_domain(d: &str) -> String {
    match d.trim_end_matches('.') {
        "" => ".".into(),
        rest => rest.to_ascii_lowercase(),
    }
}

impl Live {
    fn of(s: &DnsSettings) -> Live {
        let mut servers = s.servers.clone();
        servers.sort();
        let mut domains: Vec<(String, bool)> = s
            .domains()
            .into_iter()
            .map(|(d, r)| (normal_domain(&d), r))
            .collect();
        domains.sort();
        Live {
            servers,
            domains,
            default_route: s.default_route,
        }
    }
}

fn property(bus: &mut Bus, path: &str, name: &str) -> Result<Value, DbusError> {
    let mut w = Writer::default();
    w.str(LINK);
    w.str(name);
    let v = bus.call(
        RESOLVE1,
        path,
        "org.freedesktop.DBus.Properties",
        "Get",
        "ss",
        w.buf,
    )?;
    match v.into_iter().next() {
        Some(Value::Variant(v)) => Ok(*v),
        other => Err(DbusError {
            name: String::new(),
            message: format!("property {name}: an unexpected answer {other:?}"),
        }),
    }
}

fn read_back(bus: &mut Bus, index: u32) -> Result<Live, DbusError> {
    let path = match manager(bus, "GetLink", "i", with_index(index))?.first() {
        Some(Value::Str(p)) => p.clone(),
        other => {
            return Err(DbusError {
                name: String::new(),
                message: format!("GetLink: an unexpected answer {other:?}"),
            })
        }
    };
    let mut servers = Vec::new();
    if let Value::Array(items) = property(bus, &path, "DNS")? {
        for item in items {
            if let Value::Struct(f) = item {
                if let (Some(Value::Int(family)), Some(Value::Array(bytes))) = (f.first(), f.get(1))
                {
                    let bytes: Vec<u8> = bytes
                        .iter()
                        .filter_map(|b| match b {
                            Value::Int(n) => Some(*n as u8),
                            _ => None,
                        })
                        .collect();
                    let ip = match (*family as i32, bytes.len()) {
                        (libc::AF_INET, 4) => IpAddr::from(<[u8; 4]>::try_from(bytes).expect("4")),
                        (libc::AF_INET6, 16) => {
                            IpAddr::from(<[u8; 16]>::try_from(bytes).expect("16"))
                        }
                        _ => continue,
                    };
                    servers.push(ip);
                }
            }
        }
    }
    servers.sort();
    let mut domains = Vec::new();
    if let Value::Array(items) = property(bus, &path, "Domains")? {
        for item in items {
            if let Value::Struct(f) = item {
                if let (Some(Value::Str(d)), Some(Value::Int(r))) = (f.first(), f.get(1)) {
                    domains.push((normal_domain(d), *r != 0));
                }
            }
        }
    }
    domains.sort();
    let default_route = matches!(property(bus, &path, "DefaultRoute")?, Value::Int(1));
    Ok(Live {
        servers,
        domains,
        default_route,
    })
}

/// Whether resolved holds `settings` for link `index` (status).
pub fn resolved_matches(index: u32, settings: &DnsSettings) -> Result<bool, KernelError> {
    let mut bus = Bus::system().map_err(kernel_error)?;
    let live = read_back(&mut bus, index).map_err(|e| {
        KernelError::new(format!(
            "read the link's settings from systemd-resolved: {e}"
        ))
    })?;
    Ok(live == Live::of(settings))
}

/// RevertLink; a link resolved does not know (gone with its settings) is fine.
pub fn resolved_revert(index: u32) -> Result<(), KernelError> {
    let mut bus = Bus::system().map_err(kernel_error)?;
    match manager(&mut bus, "RevertLink", "i", with_index(index)) {
        Ok(_) => Ok(()),
        Err(e) if e.name == "org.freedesktop.resolve1.NoSuchLink" => Ok(()),
        // resolved is gone: what it held for the link went with it (and it was the backend
        // when up ran, so nothing else holds the settings).
        Err(e)
            if e.name == "org.freedesktop.DBus.Error.ServiceUnknown"
                || e.name == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
        {
            log::info!("systemd-resolved is not running ({e}): nothing to revert");
            Ok(())
        }
        Err(e) => Err(KernelError::new(format!("RevertLink: {e}"))),
    }
}

/// The name resolvconf knows the link by, as wg-quick chooses it: Debian's resolvconf orders
/// interfaces by /etc/resolvconf/interface-order, whose first `NAME*` pattern is the prefix
/// (`tun.wg0`); not when `resolvconf` is a symlink (systemd's shim, which would cut at the dot).
fn resolvconf_name(program: &Path, iface: &str) -> String {
    let is_link = std::fs::symlink_metadata(program).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        return iface.to_string();
    }
    let prefix = std::fs::read_to_string("/etc/resolvconf/interface-order")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let p = l.trim().strip_suffix('*')?;
                (!p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
                    .then(|| format!("{p}."))
            })
        })
        .unwrap_or_default();
    format!("{prefix}{iface}")
}

fn resolvconf() -> Result<PathBuf, KernelError> {
    resolvconf_program().ok_or_else(|| KernelError::new("no resolvconf program on PATH"))
}

/// `resolvconf -a NAME -m 0 [-x]` with `nameserver` lines and a `search` line on stdin; `-x`
/// (exclusive) when the link takes every query.
pub fn resolvconf_set(iface: &str, settings: &DnsSettings) -> Result<(), KernelError> {
    let program = resolvconf()?;
    let name = resolvconf_name(&program, iface);
    let named: Vec<String> = settings
        .routing
        .iter()
        .filter(|d| *d != ".")
        .map(|d| format!("~{d}"))
        .collect();
    if !named.is_empty() {
        log::warn!(
            "{iface}: resolvconf has no routing domains: {} left out",
            named.join(" ")
        );
    }
    let args = settings.resolvconf_args(&name);
    let mut cmd = child::command(&program.to_string_lossy(), child::resolvconf_grant());
    cmd.args(&args).stdin(Stdio::piped());
    let what = format!("resolvconf {}", args.join(" "));
    let mut proc = cmd
        .spawn()
        .map_err(|e| KernelError::new(format!("cannot start {what}: {e}")))?;
    let written = proc
        .stdin
        .take()
        .expect("piped")
        .write_all(settings.resolv_conf().as_bytes());
    let status = proc
        .wait()
        .map_err(|e| KernelError::new(format!("{what}: {e}")))?;
    let result = match (status.code(), written) {
        (Some(0), Ok(())) => Ok(()),
        (Some(0), Err(e)) => Err(KernelError::new(format!("{what}: writing its input: {e}"))),
        (Some(c), _) => Err(KernelError::new(format!("{what} exited with status {c}"))),
        (None, _) => Err(KernelError::new(format!("{what} was killed by {status}"))),
    };
    if result.is_err() {
        let _ = resolvconf_revert(iface);
    }
    result
}

/// `resolvconf -d NAME -f` (-f: a name it does not know is fine).
pub fn resolvconf_revert(iface: &str) -> Result<(), KernelError> {
    let program = resolvconf()?;
    let name = resolvconf_name(&program, iface);
    let mut cmd = child::command(&program.to_string_lossy(), child::resolvconf_grant());
    cmd.args(["-d", &name, "-f"]);
    child::run(cmd, &format!("resolvconf -d {name} -f"))
}
