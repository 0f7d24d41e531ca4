//! What the benches share: the configuration of N peers that scripts/bench also makes, and a
//! plain timing harness (median and minimum of several runs).

#![allow(dead_code)] // each bench uses part of it

use std::time::{Duration, Instant};

/// N peers as scripts/bench makes them (one /32 from 198.18.0.0/15, one /128, an endpoint in
/// 198.51.100.0/24), the last `keepalive_last` with a keepalive of 25; `interface` holds the
/// interface's own fields (ips, key, port…), each line ending with a comma.
pub fn config_text(n: u32, interface: &str, keepalive_last: u32) -> String {
    let mut text = format!("Interface(\n{interface}    peers: [\n");
    for i in 0..n {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_be_bytes());
        b[31] = 0x5a;
        let key = wg_exec_steps::Key::from_bytes(b, false).to_base64();
        let keepalive = match i >= n - keepalive_last {
            true => ", persistent_keepalive: 25",
            false => "",
        };
        text.push_str(&format!(
            "        Peer(public_key: \"{key}\", allowed_ips: [\"198.{}.{}.{}/32\", \"2001:db8:4::{i:x}/128\"], endpoint: \"198.51.100.{}:51820\"{keepalive}),\n",
            18 + (i >> 16),
            (i >> 8) & 255,
            i & 255,
            i % 250 + 1
        ));
    }
    text.push_str("    ],\n)\n");
    text
}

/// The interface fields every bench starts from.
pub const INTERFACE: &str =
    "    ips: [\"192.0.2.1/24\", \"2001:db8:1::1/64\"],\n    listen_port: 51820,\n    mtu: 1420,\n";

/// Median and minimum of `runs` runs of `f`, in ms.
pub fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    (
        times[runs / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
    )
}
