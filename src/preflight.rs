//! Checks that need the file system but change nothing: key files exist, hold keys and are not
//! readable by others; named namespaces exist. `check` and `up` run them before any step.

use crate::config::{Config, ConfigError, Warning};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use wg_exec_steps::{Key, SecretSource};
use zeroize::Zeroize;

/// Where named network namespaces live.
pub const NETNS_DIR: &str = "/run/netns";

pub struct Preflight {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<Warning>,
}

pub fn run(cfg: &Config, netns_dir: &Path) -> Preflight {
    let mut p = Preflight {
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let at = |field: &str, message: String| ConfigError {
        file: cfg.path.clone(),
        pos: Some(cfg.locations.get(field)),
        field: cfg.locations.display(field),
        message,
    };
    // pre_setup runs before anything needs a key file or a namespace, and may make them (the
    // module's own tests create their namespace there): then what is missing is said, and the
    // step that needs it fails with the kernel's reason if pre_setup did not make it.
    let later = !cfg.pre_setup.is_empty();
    let missing = match later {
        true => Missing::PreSetup,
        false => Missing::Refused,
    };
    if let SecretSource::File(path) = &cfg.private_key {
        let missing = match cfg.generate_private_key_file {
            true => Missing::Generated,
            false => missing,
        };
        key_file(&mut p, path, missing, |m| at("private_key_file", m));
    }
    for (i, peer) in cfg.peers.iter().enumerate() {
        if let Some(SecretSource::File(path)) = &peer.preshared_key {
            let field = format!("peers[{i}].preshared_key_file");
            key_file(&mut p, path, missing, |m| at(&field, m));
        }
    }
    for (field, ns) in [
        ("socket_namespace", &cfg.socket_namespace),
        ("interface_namespace", &cfg.interface_namespace),
    ] {
        if let Some(name) = ns.as_deref().filter(|n| *n != "init") {
            if !netns_dir.join(name).exists() && later {
                p.warnings.push(at(
                    field,
                    format!(
                        "network namespace `{name}` does not exist yet ({}/{name}); pre_setup must create it",
                        netns_dir.display()
                    ),
                ));
            } else if !netns_dir.join(name).exists() {
                p.errors.push(at(
                    field,
                    format!(
                        "network namespace `{name}` does not exist ({}/{name}); wg-exec never creates namespaces (ip netns add {name})",
                        netns_dir.display()
                    ),
                ));
            }
        }
    }
    inline_secrets(cfg, &mut p);
    full_tunnel(cfg, &mut p, Path::new("/"));
    if let Some(e) = dns_namespace(cfg) {
        p.errors.push(e);
    }
    endpoints_inside_routes(cfg, &mut p);
    p
}

/// What a full tunnel needs beyond netlink, and what would undo it behind wg-exec's back.
fn full_tunnel(cfg: &Config, p: &mut Preflight, root: &Path) {
    if !cfg.full_tunnel() {
        return;
    }
    let at = |message: String| ConfigError {
        file: cfg.path.clone(),
        pos: Some(cfg.locations.get("table")),
        field: cfg.locations.display("table"),
        message,
    };
    if find_program("nft").is_none() {
        p.errors.push(at("a full tunnel (a /0 allowed IP with table \"auto\") needs nft for its firewall table, and there is none on PATH (Debian: apt install nftables)".into()));
    }
    if networkd_running() && networkd_manages_foreign_rules(root) {
        p.warnings.push(at("systemd-networkd runs with ManageForeignRoutingPolicyRules=yes (its default): it deletes the full tunnel's policy rules when it reconfigures; set ManageForeignRoutingPolicyRules=no in /etc/systemd/networkd.conf ([Network] section)".into()));
    }
}

/// Whether wg-exec runs in a network namespace other than the host's (PID 1's): by comparing
/// with PID 1's when that can be read (root on most machines), else with the named namespaces
/// of /run/netns (`ip netns exec`), which anyone can stat.
pub fn in_foreign_netns() -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    let Ok(ours) = std::fs::metadata("/proc/self/ns/net").map(id) else {
        return false;
    };
    if let Ok(host) = std::fs::metadata("/proc/1/ns/net").map(id) {
        return ours != host;
    }
    std::fs::read_dir(NETNS_DIR)
        .map(|d| {
            d.flatten()
                .any(|e| std::fs::metadata(e.path()).map(id).ok() == Some(ours))
        })
        .unwrap_or(false)
}

/// systemd-resolved and resolvconf serve the host's network namespace (PID 1's): a link in
/// another one (wg-exec run by `ip netns exec`, or by a unit with NetworkNamespacePath=) has
/// an index that names some other link there, whose DNS would be changed.
fn dns_namespace(cfg: &Config) -> Option<ConfigError> {
    if cfg.dns.is_empty()
        || crate::config::derived::interface_ns(cfg) != wg_exec_steps::Netns::Current
        || !in_foreign_netns()
    {
        return None;
    }
    Some(ConfigError {
        file: cfg.path.clone(),
        pos: Some(cfg.locations.get("dns")),
        field: cfg.locations.display("dns"),
        message: "wg-exec runs in a network namespace other than the host's (PID 1's), where systemd-resolved and resolvconf would set the DNS of another link; set it inside the namespace yourself (/etc/netns/NAME/resolv.conf) and drop `dns`".into(),
    })
}

/// A program on PATH (wg-exec's own, as its children get it).
pub fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether systemd-networkd runs (a process whose name is its, as /proc/PID/comm has it).
fn networkd_running() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "systemd-network")
    })
}

/// Whether systemd-networkd's ManageForeignRoutingPolicyRules= is on under `root`: the main
/// file, then drop-ins by name across the directories, the last setting winning
/// (systemd.conf(5)); on by default.
pub fn networkd_manages_foreign_rules(root: &Path) -> bool {
    let mut files = vec![root.join("etc/systemd/networkd.conf")];
    let mut dropins: std::collections::BTreeMap<std::ffi::OsString, std::path::PathBuf> =
        std::collections::BTreeMap::new();
    // Later directories here take precedence for the same name.
    for dir in [
        "usr/lib/systemd/networkd.conf.d",
        "usr/local/lib/systemd/networkd.conf.d",
        "run/systemd/networkd.conf.d",
        "etc/systemd/networkd.conf.d",
    ] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "conf") {
                    dropins.insert(e.file_name(), e.path());
                }
            }
        }
    }
    files.extend(dropins.into_values());
    let mut on = true;
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_string();
            } else if section == "[Network]" {
                if let Some((k, v)) = line.split_once('=') {
                    if k.trim() == "ManageForeignRoutingPolicyRules" {
                        on = !matches!(v.trim(), "no" | "false" | "0" | "off");
                    }
                }
            }
        }
    }
    on
}

/// An endpoint inside an allowed IP that becomes a route outside a full tunnel's table: the
/// tunnel's own packets would be routed into the tunnel (only a full tunnel's /0 is kept from
/// doing that, by its fwmark).
fn endpoints_inside_routes(cfg: &Config, p: &mut Preflight) {
    let routes = crate::config::derived::routes(cfg);
    // The first route (in the order of `routes`) that holds each endpoint, found by prefix:
    // one lookup per prefix length in use, not a walk over every route for every peer (that
    // was 10,000 × 20,000 comparisons, most of a reload's time at 10,000 peers).
    let mut first: std::collections::HashMap<ipnet::IpNet, usize> =
        std::collections::HashMap::with_capacity(routes.len());
    let mut lengths: std::collections::BTreeSet<(bool, u8)> = std::collections::BTreeSet::new();
    for (k, r) in routes.iter().enumerate() {
        first.entry(r.dst.trunc()).or_insert(k);
        lengths.insert((r.dst.addr().is_ipv4(), r.dst.prefix_len()));
    }
    let holding = |ip: std::net::IpAddr| {
        lengths
            .iter()
            .filter(|(v4, _)| *v4 == ip.is_ipv4())
            .filter_map(|(_, len)| ipnet::IpNet::new(ip, *len).ok())
            .filter_map(|net| first.get(&net.trunc()).copied())
            .min()
            .map(|k| &routes[k])
    };
    for (i, peer) in cfg.peers.iter().enumerate() {
        let Some(ep) = &peer.endpoint else { continue };
        let Ok(ip) = ep.host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() else {
            continue;
        };
        if let Some(r) = holding(ip) {
            p.warnings.push(ConfigError {
                file: cfg.path.clone(),
                pos: Some(cfg.locations.get(&format!("peers[{i}].endpoint"))),
                field: cfg.locations.display(&format!("peers[{i}].endpoint")),
                message: format!(
                    "endpoint {ip} lies inside allowed IP {}, which becomes a route through {} (table {}): the tunnel's own packets would go into the tunnel; route the endpoint through the underlay (a host route) or narrow the allowed IPs",
                    r.dst, cfg.name, r.table
                ),
            });
        }
    }
}

/// A `dns` needs systemd-resolved or resolvconf (`available`, as the kernel finds them):
/// without either it is refused before anything changes.
pub fn dns(cfg: &Config, available: Option<wg_exec_steps::DnsBackend>) -> Option<ConfigError> {
    if cfg.dns.is_empty() || available.is_some() {
        return None;
    }
    Some(ConfigError {
        file: cfg.path.clone(),
        pos: Some(cfg.locations.get("dns")),
        field: cfg.locations.display("dns"),
        message: "neither systemd-resolved (org.freedesktop.resolve1 on the system bus) nor a resolvconf program (on PATH) is available to set the DNS servers; start systemd-resolved, install openresolv, or drop `dns`".into(),
    })
}

/// What a key file that does not exist means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// An error.
    Refused,
    /// Fine: up generates it (generate_private_key_file).
    Generated,
    /// Said, not refused: pre_setup may make it.
    PreSetup,
}

/// A configuration that holds a key itself (a wg-quick `.conf` as usual) is a key file: warned
/// about the same way when its group may write it or others may read or write it (wg-quick and
/// systemd-networkd warn too).
fn inline_secrets(cfg: &Config, p: &mut Preflight) {
    let private = matches!(cfg.private_key, SecretSource::Inline(_));
    let preshared = cfg
        .peers
        .iter()
        .position(|peer| matches!(peer.preshared_key, Some(SecretSource::Inline(_))));
    let field = match (private, preshared) {
        (true, _) => "private_key".to_string(),
        (false, Some(i)) => format!("peers[{i}].preshared_key"),
        (false, None) => return,
    };
    let Some(warning) = secret_file_mode(&cfg.path, "configuration") else {
        return;
    };
    p.warnings.push(ConfigError {
        file: cfg.path.clone(),
        pos: Some(cfg.locations.get(&field)),
        field: cfg.locations.display(&field),
        message: format!("{warning}, and it holds a key inline"),
    });
}

/// The warning for a file holding a secret whose mode lets its group write it or others read
/// or write it, None when the mode is right (or the file cannot be read: said elsewhere).
fn secret_file_mode(path: &Path, what: &str) -> Option<String> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    if mode & 0o027 == 0 {
        return None;
    }
    let who = match mode & 0o007 != 0 {
        true => "readable by others",
        false => "writable by its group",
    };
    Some(format!(
        "{what} {} is {who} (mode {:04o}); chmod 600 it (640 for a group that must read it)",
        path.display(),
        mode & 0o7777
    ))
}

fn key_file(p: &mut Preflight, path: &Path, missing: Missing, at: impl Fn(String) -> ConfigError) {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing == Missing::Generated => {
            return
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing == Missing::PreSetup => {
            p.warnings.push(at(format!(
                "key file {shown} does not exist yet; pre_setup must create it"
            )));
            return;
        }
        Err(e) => {
            p.errors.push(at(format!("key file {shown}: {e}")));
            return;
        }
    };
    if !meta.is_file() {
        p.errors
            .push(at(format!("key file {shown} is not a regular file")));
        return;
    }
    // Others must not read it; its group may (a non-root unit's group reads a root-owned key),
    // but not write it.
    if let Some(warning) = secret_file_mode(path, "key file") {
        p.warnings.push(at(warning));
    }
    match std::fs::read_to_string(path) {
        Ok(mut text) => {
            let parsed = Key::from_base64(&text, true);
            text.zeroize();
            if let Err(e) = parsed {
                p.errors.push(at(format!(
                    "key file {shown} does not hold a WireGuard key: {e}"
                )));
            }
        }
        Err(e) => p
            .errors
            .push(at(format!("cannot read key file {shown}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The warning names the first route (in the configuration's order) that holds the
    /// endpoint, of its own family, whatever the prefix lengths: as a walk over every route did.
    #[test]
    fn an_endpoint_inside_routes_is_named_with_the_first_route_holding_it() {
        let key = |i: u8| Key::from_bytes([i; 32], false).to_base64();
        let text = format!(
            r#"(private_key: "{}", peers: [
                (public_key: "{}", allowed_ips: ["198.51.100.7/32", "2001:db8:9::/48"], endpoint: "198.51.100.7:1"),
                (public_key: "{}", allowed_ips: ["198.51.100.0/24"], endpoint: "[2001:db8:9::5]:1"),
                (public_key: "{}", allowed_ips: ["198.18.0.0/15"], endpoint: "203.0.113.1:1"),
                (public_key: "{}", allowed_ips: ["203.0.113.0/24", "198.18.4.0/24"], endpoint: "198.18.4.4:1"),
                (public_key: "{}", allowed_ips: ["192.0.2.0/24"], endpoint: "example.org:1"),
            ])"#,
            key(9),
            key(1),
            key(2),
            key(3),
            key(4),
            key(5),
        );
        let (cfg, _) = crate::config::parse(
            "wg0",
            Path::new("wg0.ron"),
            &text,
            &crate::config::RouteTables::builtin(),
        )
        .unwrap();
        let mut p = Preflight {
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        endpoints_inside_routes(&cfg, &mut p);
        let said: Vec<(String, String)> = p
            .warnings
            .iter()
            .map(|w| {
                let inside = w.message.split(" lies inside allowed IP ").nth(1).unwrap();
                (
                    w.field.clone(),
                    inside.split(',').next().unwrap().to_string(),
                )
            })
            .collect();
        let want = [
            ("peers[0].endpoint", "198.51.100.7/32"),
            ("peers[1].endpoint", "2001:db8:9::/48"),
            ("peers[2].endpoint", "203.0.113.0/24"),
            ("peers[3].endpoint", "198.18.0.0/15"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(said, want);
    }

    #[test]
    fn networkd_setting_defaults_to_on_and_the_last_drop_in_wins() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert!(networkd_manages_foreign_rules(r), "on by default");
        std::fs::create_dir_all(r.join("etc/systemd/networkd.conf.d")).unwrap();
        std::fs::write(
            r.join("etc/systemd/networkd.conf"),
            "[Network]\n#ManageForeignRoutingPolicyRules=no\n",
        )
        .unwrap();
        assert!(networkd_manages_foreign_rules(r), "a comment sets nothing");
        std::fs::write(
            r.join("etc/systemd/networkd.conf.d/10-wg.conf"),
            "[Network]\nManageForeignRoutingPolicyRules=no\n",
        )
        .unwrap();
        assert!(!networkd_manages_foreign_rules(r));
        std::fs::create_dir_all(r.join("run/systemd/networkd.conf.d")).unwrap();
        std::fs::write(
            r.join("run/systemd/networkd.conf.d/20-on.conf"),
            "[Network]\nManageForeignRoutingPolicyRules=yes\n",
        )
        .unwrap();
        assert!(networkd_manages_foreign_rules(r), "20-on.conf sorts last");
        std::fs::write(
            r.join("etc/systemd/networkd.conf.d/20-on.conf"),
            "[DHCPv4]\nManageForeignRoutingPolicyRules=yes\n[Network]\nManageForeignRoutingPolicyRules=false\n",
        )
        .unwrap();
        assert!(
            !networkd_manages_foreign_rules(r),
            "/etc masks /run's file of the same name; only [Network] counts"
        );
    }
}
