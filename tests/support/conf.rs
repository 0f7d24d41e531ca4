//! One builder for the configurations the real tests write, instead of RON strings built by
//! hand in each file. Fields beyond the addresses and the key are written as RON fragments
//! (`"listen_port: 51820"`), so a test says exactly what a user would write.

use std::path::Path;

/// An `Interface(...)`.
#[derive(Clone, Debug)]
pub struct Conf {
    ips: Vec<String>,
    key_field: String,
    fields: Vec<String>,
    peers: Vec<Peer>,
}

/// A `Peer(...)`.
#[derive(Clone, Debug)]
pub struct Peer {
    public_key: String,
    allowed_ips: Vec<String>,
    fields: Vec<String>,
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Conf {
    /// Addresses and a private key file.
    pub fn new(ips: &[&str], key_file: &Path) -> Conf {
        Conf {
            ips: ips.iter().map(|s| s.to_string()).collect(),
            key_field: format!("private_key_file: \"{}\"", key_file.display()),
            fields: Vec::new(),
            peers: Vec::new(),
        }
    }

    /// Addresses and an inline private key.
    pub fn inline_key(ips: &[&str], private_key: &str) -> Conf {
        Conf {
            key_field: format!("private_key: \"{private_key}\""),
            ..Conf::new(ips, Path::new(""))
        }
    }

    /// Any other field, as RON: `"listen_port: 51820"`, `"socket_namespace: \"a\""`. Several
    /// may be given in one fragment, separated by commas; an empty fragment adds nothing.
    pub fn with(mut self, fragment: impl Into<String>) -> Conf {
        let fragment = fragment.into();
        let fragment = fragment.trim().trim_end_matches(',').trim();
        if !fragment.is_empty() {
            self.fields.push(fragment.to_string());
        }
        self
    }

    pub fn peer(mut self, peer: Peer) -> Conf {
        self.peers.push(peer);
        self
    }

    pub fn peers(mut self, peers: impl IntoIterator<Item = Peer>) -> Conf {
        self.peers.extend(peers);
        self
    }

    /// The RON text.
    pub fn render(&self) -> String {
        let mut out = format!(
            "Interface(\n    ips: [{}],\n    {},\n",
            quoted(&self.ips),
            self.key_field
        );
        for f in &self.fields {
            out.push_str(&format!("    {f},\n"));
        }
        let peers: Vec<String> = self.peers.iter().map(Peer::render).collect();
        out.push_str(&format!(
            "    peers: [\n        {}\n    ],\n)\n",
            peers.join(",\n        ")
        ));
        out
    }
}

impl Peer {
    pub fn new(public_key: &str, allowed_ips: &[&str]) -> Peer {
        Peer {
            public_key: public_key.to_string(),
            allowed_ips: allowed_ips.iter().map(|s| s.to_string()).collect(),
            fields: Vec::new(),
        }
    }

    /// Any other field, as RON: `"endpoint: \"203.0.113.2:51821\""`.
    pub fn with(mut self, fragment: impl Into<String>) -> Peer {
        let fragment = fragment.into();
        let fragment = fragment.trim().trim_end_matches(',').trim();
        if !fragment.is_empty() {
            self.fields.push(fragment.to_string());
        }
        self
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "Peer(public_key: \"{}\", allowed_ips: [{}]",
            self.public_key,
            quoted(&self.allowed_ips)
        );
        for f in &self.fields {
            out.push_str(&format!(", {f}"));
        }
        out.push(')');
        out
    }
}

/// A peer in one call: key, allowed IPs and a fragment of other fields.
pub fn peer(public_key: &str, allowed_ips: &[&str], fields: &str) -> Peer {
    Peer::new(public_key, allowed_ips).with(fields)
}

/// An interface's RON text in one call.
pub fn interface(ips: &[&str], key_file: &Path, fields: &str, peers: &[Peer]) -> String {
    Conf::new(ips, key_file)
        .with(fields)
        .peers(peers.iter().cloned())
        .render()
}
