//! `wg-exec convert FILE.conf`: a wg-quick file as the equivalent RON, on stdout. The .conf is
//! read and checked exactly as `up` reads it, so that `up --print` of both forms is the same.
//! Keys stay where they were: inline keys stay inline (and are warned about: move them to
//! files with private_key_file / preshared_key_file).

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
    print!("{o}");
    Outcome::Done
}
