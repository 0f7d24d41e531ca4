//! wg-quick's .conf files, read into the same raw form as a RON file, so that one validation
//! serves both and a .conf gets the same checks and the same kind of errors (file, line:column,
//! and the key as the file spells it: "[Peer] 2 AllowedIPs").
//!
//! The grammar follows `wg` and wg-quick (wireguard-tools config.c and wg-quick/linux.bash):
//! `[Interface]` and `[Peer]` sections, case-insensitive keys, `key = value`, `#` comments
//! (kept inside hook values, which wg-quick leaves to the shell), repeated keys and comma lists
//! that accumulate (Address, DNS, AllowedIPs), the last value winning for the others, an empty
//! AllowedIPs clearing the list, addresses without a prefix length meaning /32 or /128, and `%i`
//! in hooks replaced by the interface name. A key wg-exec has no equivalent for (SaveConfig) is
//! an error that says so; an unknown key is an error, as `wg` makes it.

use super::locate::{Pos, SourceMap};
use super::raw::{Lines, PostSetupAt, RawInterface, RawPeer, StrOrInt};
use super::{ConfigError, ConfigErrors, Warning};
use std::collections::HashMap;
use std::path::Path;

/// Whether a file is a wg-quick .conf: by its extension, else by its first significant line.
pub fn looks_like_conf(path: &Path, text: &str) -> bool {
    if path.extension().is_some_and(|e| e == "conf") {
        return true;
    }
    if path.extension().is_some_and(|e| e == "ron") {
        return false;
    }
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.eq_ignore_ascii_case("[interface]") || l.eq_ignore_ascii_case("[peer]"))
}

/// The raw configuration, where each value is, what the file calls it, and warnings that only a
/// .conf can have (hooks that run at another moment than under wg-quick).
pub struct Read {
    pub raw: RawInterface,
    pub map: SourceMap,
    pub warnings: Vec<Warning>,
}

#[derive(PartialEq, Clone, Copy)]
enum Section {
    None,
    Interface,
    Peer,
}

struct Reader<'a> {
    path: &'a Path,
    iface: &'a str,
    positions: HashMap<String, Pos>,
    names: HashMap<String, String>,
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

/// What an error may show of text that is not a known key: a word that could be a key name
/// (letters only, no longer than the longest key), else nothing. A line that is not a key is
/// often a secret: a key wrapped onto its own line, or pasted where a name was expected.
fn shown(text: &str) -> &str {
    if !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        text
    } else {
        "(this line; its text is not shown, it may be a key)"
    }
}

impl Reader<'_> {
    fn error(&mut self, pos: Pos, key: &str, message: String) {
        self.errors.push(ConfigError {
            file: self.path.to_path_buf(),
            pos: Some(pos),
            field: key.to_string(),
            message,
        });
    }

    fn warn(&mut self, pos: Pos, key: &str, message: String) {
        self.warnings.push(ConfigError {
            file: self.path.to_path_buf(),
            pos: Some(pos),
            field: key.to_string(),
            message,
        });
    }

    /// Records where `path` is and how the file names it (the first time: a list's place).
    fn place(&mut self, path: String, pos: Pos, name: String) {
        self.positions.entry(path.clone()).or_insert(pos);
        self.names.entry(path).or_insert(name);
    }

    /// The same for a key whose last value wins: the last line is the one to point at.
    fn replace(&mut self, path: String, pos: Pos, name: String) {
        self.positions.insert(path.clone(), pos);
        self.names.insert(path, name);
    }
}

/// A comma list, each item trimmed, empty items dropped.
fn items(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// An address with its prefix length: /32 or /128 when it has none.
fn with_prefix(a: &str) -> String {
    match (a.contains('/'), a.contains(':')) {
        (true, _) => a.to_string(),
        (false, true) => format!("{a}/128"),
        (false, false) => format!("{a}/32"),
    }
}

pub fn read(iface: &str, path: &Path, text: &str) -> Result<Read, ConfigErrors> {
    let mut r = Reader {
        path,
        iface,
        positions: HashMap::new(),
        names: HashMap::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut raw = RawInterface {
        ips: Vec::new(),
        private_key: None,
        private_key_file: None,
        generate_private_key_file: false,
        listen_port: None,
        pre_setup: Lines::default(),
        post_setup: Lines::default(),
        pre_shutdown: Lines::default(),
        post_shutdown: Lines::default(),
        // wg-quick's default.
        table: StrOrInt::Str("auto".into()),
        peers: Vec::new(),
        allowed_ips_as_routes: true,
        socket_namespace: None,
        interface_namespace: None,
        fwmark: None,
        // wg-quick's automatic MTU unless the file sets one.
        mtu: Some(StrOrInt::Str("auto".into())),
        metric: None,
        dynamic_endpoint_refresh_seconds: 0,
        backend: Default::default(),
        userspace_implementation: "wireguard-go".into(),
        dns: Vec::new(),
        ipv6_leak_protection: true,
        // PostUp after everything, where wg-quick runs it.
        post_setup_at: PostSetupAt::Last,
    };
    r.place(String::new(), Pos { line: 1, col: 1 }, "[Interface]".into());
    let mut section = Section::None;
    let mut seen_interface = false;
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let content = line.trim_end_matches('\r');
        let trimmed = content.trim_start();
        let indent = content.len() - trimmed.len();
        let at = |col: usize| Pos {
            line: lineno,
            col: col + 1,
        };
        // A comment, or nothing.
        let uncommented = trimmed.split('#').next().unwrap_or("").trim_end();
        if uncommented.is_empty() {
            continue;
        }
        if uncommented.starts_with('[') {
            section = match uncommented.to_ascii_lowercase().as_str() {
                "[interface]" => {
                    seen_interface = true;
                    Section::Interface
                }
                "[peer]" => {
                    let i = raw.peers.len();
                    raw.peers.push(RawPeer {
                        name: None,
                        public_key: String::new(),
                        preshared_key: None,
                        preshared_key_file: None,
                        allowed_ips: Vec::new(),
                        endpoint: None,
                        dynamic_endpoint_refresh_seconds: None,
                        dynamic_endpoint_refresh_restart_seconds: None,
                        persistent_keepalive: None,
                    });
                    r.place(
                        format!("peers[{i}]"),
                        at(indent),
                        format!("[Peer] {}", i + 1),
                    );
                    Section::Peer
                }
                _ => {
                    r.error(
                        at(indent),
                        // A section's name is shown with its brackets, as the file spells it.
                        match uncommented.trim_matches(|c| c == '[' || c == ']') {
                            inner if shown(inner) == inner => uncommented,
                            inner => shown(inner),
                        },
                        "not a section: [Interface] or [Peer]".into(),
                    );
                    Section::None
                }
            };
            continue;
        }
        let Some((key, _)) = trimmed.split_once('=') else {
            // Only its first word is named: the rest may be a secret.
            r.error(
                at(indent),
                shown(uncommented.split_whitespace().next().unwrap_or("")),
                "a line without `=`: Key = Value".into(),
            );
            continue;
        };
        let key_name = key.trim();
        // "PrivateKey KEY=" splits at the key's own padding: only the first word is named, the
        // rest may be a secret.
        if key_name.contains(|c: char| c.is_whitespace() || c == ':') {
            let word = key_name
                .split(|c: char| c.is_whitespace() || c == ':')
                .next()
                .unwrap_or("");
            r.error(
                at(indent),
                shown(word),
                "is not followed by `=`: Key = Value".into(),
            );
            continue;
        }
        let lower = key_name.to_ascii_lowercase();
        let hook = matches!(lower.as_str(), "preup" | "postup" | "predown" | "postdown");
        // Hook values keep their `#` (the shell's business, as under wg-quick).
        let value_start = trimmed.find('=').expect("split above") + 1;
        let raw_value = if hook {
            &trimmed[value_start..]
        } else {
            uncommented.get(value_start..).unwrap_or("")
        };
        let value = raw_value.trim();
        let value_col = indent + value_start + (raw_value.len() - raw_value.trim_start().len());
        let pos = at(value_col);
        match (section, lower.as_str()) {
            (Section::None, _) => {
                r.error(at(indent), shown(key_name), "a key before any [Interface] or [Peer] section".into());
            }
            (Section::Interface, "privatekey") => {
                r.replace("private_key".into(), pos, "PrivateKey".into());
                raw.private_key = Some(value.to_string());
            }
            (Section::Interface, "listenport") => {
                r.replace("listen_port".into(), pos, "ListenPort".into());
                match value.parse::<i64>() {
                    Ok(p) => raw.listen_port = Some(p),
                    Err(_) => r.error(pos, "ListenPort", format!("`{value}` is not a port number (0-65535); wg-exec takes no service names")),
                }
            }
            (Section::Interface, "fwmark") => {
                r.replace("fwmark".into(), pos, "FwMark".into());
                raw.fwmark = Some(StrOrInt::Str(value.to_string()));
            }
            (Section::Interface, "address") => {
                for a in items(value) {
                    let i = raw.ips.len();
                    r.place(format!("ips[{i}]"), pos, "Address".into());
                    raw.ips.push(with_prefix(&a));
                }
                r.place("ips".into(), pos, "Address".into());
            }
            (Section::Interface, "dns") => {
                for d in items(value) {
                    let i = raw.dns.len();
                    r.place(format!("dns[{i}]"), pos, "DNS".into());
                    raw.dns.push(d);
                }
                r.place("dns".into(), pos, "DNS".into());
            }
            (Section::Interface, "mtu") => {
                r.replace("mtu".into(), pos, "MTU".into());
                match value.parse::<i64>() {
                    Ok(m) => raw.mtu = Some(StrOrInt::Int(m.into())),
                    Err(_) => r.error(pos, "MTU", format!("`{value}` is not a number")),
                }
            }
            (Section::Interface, "table") => {
                r.replace("table".into(), pos, "Table".into());
                match value.to_ascii_lowercase().as_str() {
                    // No routes at all, as wg-quick's Table = off.
                    "off" => {
                        raw.allowed_ips_as_routes = false;
                        raw.table = StrOrInt::Str("main".into());
                    }
                    _ => {
                        raw.allowed_ips_as_routes = true;
                        raw.table = StrOrInt::Str(value.to_string());
                    }
                }
            }
            (Section::Interface, "preup" | "postup" | "predown" | "postdown") => {
                let (field, lines, ours) = match lower.as_str() {
                    "preup" => ("pre_setup", &mut raw.pre_setup, "pre_setup"),
                    "postup" => ("post_setup", &mut raw.post_setup, "post_setup"),
                    "predown" => ("pre_shutdown", &mut raw.pre_shutdown, "pre_shutdown"),
                    _ => ("post_shutdown", &mut raw.post_shutdown, "post_shutdown"),
                };
                let i = lines.0.len();
                lines.0.push(value.replace("%i", r.iface));
                r.place(format!("{field}[{i}]"), pos, key_name.to_string());
                r.place(field.into(), pos, key_name.to_string());
                if lower == "preup" && i == 0 {
                    r.warn(pos, key_name, format!("runs as wg-exec's {ours}, before the link exists, as wg-quick before v1.0.20250521 runs it (newer wg-quick runs PreUp after creating the link)"));
                }
            }
            (Section::Interface, "saveconfig") => {
                r.error(pos, key_name, "has no equivalent in wg-exec (it rewrites this file from the live interface at down); remove it: wg-exec never writes its configuration".into());
            }
            (Section::Peer, _) => {
                let i = raw.peers.len() - 1;
                let peer_name = |k: &str| format!("[Peer] {} {k}", i + 1);
                let p = raw.peers.last_mut().expect("a [Peer] section opened it");
                match lower.as_str() {
                    "publickey" => {
                        p.public_key = value.to_string();
                        r.replace(format!("peers[{i}].public_key"), pos, peer_name("PublicKey"));
                    }
                    "presharedkey" => {
                        p.preshared_key = Some(value.to_string());
                        r.replace(format!("peers[{i}].preshared_key"), pos, peer_name("PresharedKey"));
                    }
                    "allowedips" if value.is_empty() => {
                        r.error(pos, &peer_name("AllowedIPs"), "has no value (`wg` rejects an empty AllowedIPs line)".into());
                    }
                    "allowedips" => {
                        for a in items(value) {
                            let j = p.allowed_ips.len();
                            p.allowed_ips.push(with_prefix(&a));
                            r.place(format!("peers[{i}].allowed_ips[{j}]"), pos, peer_name("AllowedIPs"));
                        }
                        r.place(format!("peers[{i}].allowed_ips"), pos, peer_name("AllowedIPs"));
                    }
                    "endpoint" => {
                        p.endpoint = Some(value.to_string());
                        r.replace(format!("peers[{i}].endpoint"), pos, peer_name("Endpoint"));
                    }
                    "persistentkeepalive" => {
                        r.replace(format!("peers[{i}].persistent_keepalive"), pos, peer_name("PersistentKeepalive"));
                        match value {
                            v if v.eq_ignore_ascii_case("off") => p.persistent_keepalive = Some(0),
                            v => match v.parse::<i64>() {
                                Ok(k) => p.persistent_keepalive = Some(k),
                                Err(_) => r.error(pos, &peer_name("PersistentKeepalive"), format!("`{v}` is neither `off` nor a number of seconds")),
                            },
                        }
                    }
                    _ => r.error(at(indent), &peer_name(shown(key_name)), "not a key of a [Peer] section (PublicKey, PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive)".into()),
                }
            }
            (Section::Interface, _) => r.error(at(indent), shown(key_name), "not a key of the [Interface] section (PrivateKey, ListenPort, FwMark, Address, DNS, MTU, Table, PreUp, PostUp, PreDown, PostDown)".into()),
        }
    }
    // wg-quick hands DNS to `resolvconf -x`: the link takes every query, whatever the domains
    // (systemd's shim makes that the routing domain `~.`). Said in the configuration, so that
    // convert writes it out.
    if !raw.dns.is_empty() && !raw.dns.iter().any(|d| d.trim() == "~.") {
        raw.dns.push("~.".into());
    }
    if !seen_interface {
        r.error(
            Pos { line: 1, col: 1 },
            "[Interface]",
            "there is no [Interface] section".into(),
        );
    }
    for (i, p) in raw.peers.iter().enumerate() {
        if p.public_key.is_empty() {
            let pos = r
                .positions
                .get(&format!("peers[{i}]"))
                .copied()
                .unwrap_or(Pos { line: 1, col: 1 });
            r.error(
                pos,
                &format!("[Peer] {}", i + 1),
                "a peer is missing its PublicKey".into(),
            );
        }
    }
    if !r.errors.is_empty() {
        return Err(ConfigErrors(r.errors));
    }
    Ok(Read {
        raw,
        map: SourceMap::fixed(r.positions, r.names),
        warnings: r.warnings,
    })
}
