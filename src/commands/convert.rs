//! `wg-exec convert FILE.conf`: a wg-quick file as the equivalent RON, on stdout. The .conf is
//! read and checked exactly as `up` reads it, so that `up --print` of both forms is the same.
//! Keys stay where they were: inline keys stay inline (and are warned about: move them to
//! files with private_key_file / preshared_key_file). With `-o FILE` the RON goes to a new file
//! made 0600; on stdout, a file redirect that others may read is warned about when it gets keys.

use crate::cli::ConvertArgs;
use crate::config::wgquick;
use crate::config::{self, RouteTables};
use crate::journald::{self, Priority};
use crate::outcome::Outcome;

fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", q.join(", "))
}

pub fn run(a: &ConvertArgs) -> Outcome {
    let name = match a
        .file
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|n| config::check_interface_name(n).is_ok())
    {
        Some(n) => n.to_string(),
        None => {
            return Outcome::Invalid(vec![format!(
                "{}: the interface name comes from the file name (NAME.conf, 1-15 bytes)",
                a.file.display()
            )])
        }
    };
    let text = match std::fs::read_to_string(&a.file) {
        Ok(t) => t,
        Err(e) => {
            return Outcome::Invalid(vec![format!("{}: cannot read it: {e}", a.file.display())])
        }
    };
    // Everything `up` would check, first.
    match config::parse(&name, &a.file, &text, &RouteTables::system()) {
        Err(e) => return Outcome::Invalid(e.0.iter().map(|e| e.to_string()).collect()),
        Ok((_, warnings)) => {
            for w in warnings {
                journald::line(Priority::Warning, &format!("wg-exec: warning: {w}"));
            }
        }
    }
    let read = match wgquick::read(&name, &a.file, &text) {
        Ok(r) => r,
        Err(e) => return Outcome::Invalid(e.0.iter().map(|e| e.to_string()).collect()),
    };
    let r = &read.raw;
    let mut o = format!(
        "// Converted from {} by wg-exec convert.\nInterface(\n",
        a.file.display()
    );
    let mut field = |k: &str, v: String| o.push_str(&format!("    {k}: {v},\n"));
    if !r.ips.is_empty() {
        field("ips", list(&r.ips));
    }
    if let Some(k) = &r.private_key {
        field("private_key", quoted(k));
    }
    if let Some(p) = r.listen_port {
        field("listen_port", p.to_string());
    }
    if let Some(config::StrOrInt::Str(m)) = &r.fwmark {
        field("fwmark", quoted(m));
    }
    match &r.mtu {
        Some(config::StrOrInt::Int(m)) => field("mtu", m.to_string()),
        Some(config::StrOrInt::Str(m)) => field("mtu", quoted(m)),
        None => {}
    }
    if !r.allowed_ips_as_routes {
        field("allowed_ips_as_routes", "false".into());
    } else if let config::StrOrInt::Str(t) = &r.table {
        if t != "main" {
            field("table", quoted(t));
        }
    }
    if !r.dns.is_empty() {
        field("dns", list(&r.dns));
    }
    for (k, lines) in [
        ("pre_setup", &r.pre_setup),
        ("post_setup", &r.post_setup),
        ("pre_shutdown", &r.pre_shutdown),
        ("post_shutdown", &r.post_shutdown),
    ] {
        if !lines.0.is_empty() {
            field(k, list(&lines.0));
        }
    }
    // PostUp keeps wg-quick's place (a RON post_setup runs right after the link is up).
    if !r.post_setup.0.is_empty() && r.post_setup_at == config::PostSetupAt::Last {
        field("post_setup_at", "Last".into());
    }
    o.push_str("    peers: [\n");
    for p in &r.peers {
        o.push_str("        Peer(\n");
        o.push_str(&format!(
            "            public_key: {},\n",
            quoted(&p.public_key)
        ));
        if let Some(k) = &p.preshared_key {
            o.push_str(&format!("            preshared_key: {},\n", quoted(k)));
        }
        o.push_str(&format!(
            "            allowed_ips: {},\n",
            list(&p.allowed_ips)
        ));
        if let Some(e) = &p.endpoint {
            o.push_str(&format!("            endpoint: {},\n", quoted(e)));
        }
        if let Some(k) = p.persistent_keepalive {
            o.push_str(&format!("            persistent_keepalive: {k},\n"));
        }
        o.push_str("        ),\n");
    }
    o.push_str("    ],\n)\n");
    let secrets = r.private_key.is_some() || r.peers.iter().any(|p| p.preshared_key.is_some());
    match &a.output {
        Some(path) => match write_new_private(path, &o) {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Refused(format!("cannot create {}: {e}", path.display())),
        },
        None => {
            if secrets {
                warn_if_stdout_is_shared();
            }
            print!("{o}");
            Outcome::Done
        }
    }
}

/// Creates `path` (O_EXCL, O_NOFOLLOW) with mode 0600 whatever the umask, and writes `text`.
fn write_new_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // The umask may have taken bits away, never added any: set exactly 0600.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Inline keys written to a file by the shell (`convert x.conf > x.ron`) get the shell's umask:
/// said when that file is readable or writable by others than its owner.
fn warn_if_stdout_is_shared() {
    use std::os::fd::AsFd;
    use std::os::unix::fs::PermissionsExt;
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return;
    };
    let mode = meta.permissions().mode();
    if meta.is_file() && mode & 0o077 != 0 {
        journald::line(
            Priority::Warning,
            &format!(
                "wg-exec: warning: the output holds inline keys and goes to a file of mode {:04o}: chmod 600 it, or use -o FILE (created 0600)",
                mode & 0o7777
            ),
        );
    }
}
