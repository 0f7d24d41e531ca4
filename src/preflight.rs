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
    if let SecretSource::File(path) = &cfg.private_key {
        let may_be_missing = cfg.generate_private_key_file || later;
        key_file(&mut p, path, may_be_missing, |m| at("private_key_file", m));
    }
    for (i, peer) in cfg.peers.iter().enumerate() {
        if let Some(SecretSource::File(path)) = &peer.preshared_key {
            let field = format!("peers[{i}].preshared_key_file");
            key_file(&mut p, path, later, |m| at(&field, m));
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
    p
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

fn key_file(
    p: &mut Preflight,
    path: &Path,
    may_be_missing: bool,
    at: impl Fn(String) -> ConfigError,
) {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_be_missing => return,
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
    let mode = meta.permissions().mode();
    if mode & 0o027 != 0 {
        let who = match mode & 0o007 != 0 {
            true => "readable by others",
            false => "writable by its group",
        };
        p.warnings.push(at(format!(
            "key file {shown} is {who} (mode {:04o}); chmod 600 it (640 for a group that must read it)",
            mode & 0o7777
        )));
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
