//! `wg-exec status` as a wing: the interface as up (and the last reload) recorded it, next to
//! what it is now and to what the configuration says. [`Status`] is the model (the JSON
//! document of `status --json`, whose field names are stable), [`drift`] the rules that tell
//! drift from what is not (one function per kind of object, tested on the fake kernel),
//! [`render`] the text. src/commands/status.rs is the frame: it loads, reads and prints.

pub mod drift;
pub mod render;

use crate::journal::applied::{Applied, PublicKey};
use crate::journal::{Journal, What};
use crate::plan::reload::Live;
use serde::Serialize;
use std::path::Path;
use wg_exec_steps::Backend;

/// The JSON document of `status --json` (field names are stable; see the README).
#[derive(Debug, Serialize)]
pub struct Status {
    pub interface: String,
    /// "in sync" or "drifted".
    pub state: String,
    pub netns: Option<String>,
    pub socket_netns: Option<String>,
    pub backend: String,
    pub userspace_implementation: Option<String>,
    pub userspace_pids: Vec<i32>,
    pub link_up: bool,
    pub mtu: u32,
    pub public_key: Option<String>,
    pub listen_port: u16,
    pub fwmark: u32,
    pub addresses: Vec<String>,
    pub routes: Vec<RouteStatus>,
    pub peers: Vec<PeerStatus>,
    /// One line per difference; empty when in sync.
    pub drift: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RouteStatus {
    pub destination: String,
    pub table: u32,
    pub metric: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct PeerStatus {
    pub name: String,
    pub public_key: String,
    pub endpoint: Option<String>,
    pub configured_endpoint: Option<String>,
    pub allowed_ips: Vec<String>,
    pub latest_handshake_seconds_ago: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub persistent_keepalive: u16,
    pub has_preshared_key: bool,
}

impl Status {
    /// The document for `journal`, `recorded` and the live interface, with its drift.
    pub fn of(journal: &Journal, recorded: &Applied, live: &Live, drift: Vec<String>) -> Status {
        let mut pids = Vec::new();
        for r in &journal.records {
            if let What::Link { userspace_pids, .. } = &r.what {
                pids.extend(
                    userspace_pids
                        .iter()
                        .filter(|p| Path::new(&format!("/proc/{p}")).exists()),
                );
            }
        }
        let public_key = match &live.device.private_key {
            Some(k) => Some(crate::keys::public_of(k).to_base64()),
            None => live.device.public_key.as_ref().map(|k| k.to_base64()),
        };
        Status {
            interface: journal.interface.clone(),
            state: if drift.is_empty() {
                "in sync"
            } else {
                "drifted"
            }
            .into(),
            netns: recorded.interface_namespace.clone().into(),
            socket_netns: recorded.socket_namespace.clone().into(),
            // Auto on a kernel with WireGuard runs no program: the implementation is named only when
            // one serves the link.
            backend: match (&recorded.backend, pids.is_empty()) {
                (Backend::Auto { .. }, true) => "Auto (kernel)".into(),
                (Backend::Auto { .. }, false) => "Auto (userspace)".into(),
                (Backend::Kernel, _) => "Kernel".into(),
                (Backend::Userspace { .. }, _) => "Userspace".into(),
            },
            userspace_implementation: match &recorded.backend {
                Backend::Userspace { program } => Some(program.clone()),
                Backend::Auto { userspace } if !pids.is_empty() => Some(userspace.clone()),
                Backend::Kernel if !pids.is_empty() => Some(String::new()),
                _ => None,
            },
            userspace_pids: pids,
            link_up: live.link.up,
            mtu: live.link.mtu,
            public_key,
            listen_port: live.device.listen_port,
            fwmark: live.device.fwmark,
            addresses: live.addrs.iter().map(|a| a.to_string()).collect(),
            routes: live
                .routes
                .iter()
                .map(|r| RouteStatus {
                    destination: r.dst.to_string(),
                    table: r.table,
                    metric: r.metric,
                })
                .collect(),
            peers: live
                .device
                .peers
                .iter()
                .map(|p| {
                    let key = PublicKey::of(&p.public_key);
                    PeerStatus {
                        name: recorded.name(&key).unwrap_or_else(|| key.to_string()),
                        configured_endpoint: recorded.endpoints.get(&key).map(|e| e.to_string()),
                        public_key: key.to_string(),
                        endpoint: p.endpoint.map(|e| e.to_string()),
                        allowed_ips: p.allowed_ips.iter().map(|a| a.to_string()).collect(),
                        latest_handshake_seconds_ago: p.handshake_age,
                        rx_bytes: p.rx_bytes,
                        tx_bytes: p.tx_bytes,
                        persistent_keepalive: p.persistent_keepalive,
                        has_preshared_key: p.preshared_key.is_some(),
                    }
                })
                .collect(),
            drift,
        }
    }
}
