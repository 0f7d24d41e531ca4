//! Independent observers of what wg-exec made: `wg show dump`, the UAPI socket, the
//! wireguard-go processes.

use super::netns::Netns;
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

/// Asserts that a `down` (its log `said`) took everything of `iface`: its link in `ns`, the
/// UAPI socket, the wireguard-go serving it.
pub fn assert_down_took_all(ns: &Netns, iface: &str, said: &str) {
    assert!(!ns.has_link(iface), "{said}");
    assert!(!socket_exists(iface), "the socket remains: {said}");
    assert_eq!(
        wireguard_go_processes(iface),
        0,
        "the daemon remains: {said}"
    );
}
