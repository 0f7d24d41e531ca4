//! `cargo bench --bench record`: the record of what was applied (IFACE.applied.*) at 10,000
//! peers, as a reload uses it: load it, build the target from the configuration and compare,
//! save it (temporary file, fsync, rename). A plain harness: median and minimum of several runs.

use std::path::Path;
use std::time::{Duration, Instant};
use wg_exec::config::{self, RouteTables};
use wg_exec::journal::applied::{self, Applied};

fn config_text(n: u32) -> String {
    let mut text = String::from(
        "Interface(\n    ips: [\"192.0.2.1/24\", \"2001:db8:1::1/64\"],\n    private_key_file: \"/etc/wg-exec/keys/wg0.key\",\n    listen_port: 51820,\n    mtu: 1420,\n    dns: [\"192.0.2.53\", \"corp.example\", \"~.\"],\n    peers: [\n",
    );
    for i in 0..n {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_be_bytes());
        b[31] = 0x5a;
        let key = wg_exec_steps::Key::from_bytes(b, false).to_base64();
        text.push_str(&format!(
            "        Peer(public_key: \"{key}\", allowed_ips: [\"198.{}.{}.{}/32\", \"2001:db8:4::{i:x}/128\"], endpoint: \"198.51.100.{}:51820\"),\n",
            18 + (i >> 16),
            (i >> 8) & 255,
            i & 255,
            i % 250 + 1
        ));
    }
    text.push_str("    ],\n)\n");
    text
}

fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
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

fn main() {
    let n = 10_000;
    let (cfg, _) = config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        &config_text(n),
        &RouteTables::builtin(),
    )
    .expect("valid");
    let dir = tempfile::tempdir().unwrap();
    let path = applied::path_for(dir.path(), "wg0");
    let record = Applied::of(&cfg);
    let runs = 15;
    let (save, save_min) = time(runs, || applied::save(&path, &record).unwrap());
    let bytes = std::fs::metadata(&path).unwrap().len();
    let (load, load_min) = time(runs, || {
        std::hint::black_box(applied::load(&path).unwrap().unwrap());
    });
    let (of, of_min) = time(runs, || {
        std::hint::black_box(Applied::of(&cfg));
    });
    let loaded = applied::load(&path).unwrap().unwrap();
    let (cmp, cmp_min) = time(runs, || assert!(std::hint::black_box(&loaded) == &record));
    println!("record of {n} peers: {bytes} bytes");
    for (what, m, min) in [
        ("save (write, fsync, rename)", save, save_min),
        ("load (read, parse, check)", load, load_min),
        ("build from the configuration", of, of_min),
        ("compare", cmp, cmp_min),
    ] {
        println!("  {what}: median {m:.2} ms, min {min:.2} ms over {runs} runs");
    }
}
