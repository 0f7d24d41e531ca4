//! Independent observers of what wg-exec made: `wg show dump`, the UAPI socket, the
//! wireguard-go processes.

use super::shell::{must, sh, text};
use std::path::Path;

/// The userspace processes serving an interface (by UAPI socket), for leak checks.
pub fn socket_exists(iface: &str) -> bool {
    Path::new(&format!("/var/run/wireguard/{iface}.sock")).exists()
}

pub fn wireguard_go_processes(iface: &str) -> usize {
    let out = sh(&format!("pgrep -f -x 'wireguard-go {iface}' | wc -l"));
    text(&out.stdout).trim().parse().unwrap_or(0)
}

/// `wg show IFACE dump` in `ns`, with the UAPI sockets of a unit user's /run/wireguard.
pub fn wg_dump_in(ns: &str, iface: &str, sockets: Option<&Path>) -> Vec<Vec<String>> {
    let cmd = format!("ip netns exec {ns} wg show {iface} dump");
    let cmd = match sockets {
        None => cmd,
        Some(dir) => format!(
            "unshare --mount sh -c 'mount --make-rprivate / && mount --bind {} /run/wireguard && {cmd}'",
            dir.display()
        ),
    };
    must(&cmd)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}
