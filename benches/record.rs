//! `cargo bench --bench record`: the record of what was applied (IFACE.applied.*) at 10,000
//! peers, as a reload uses it: load it, build the target from the configuration and compare,
//! save it (temporary file, fsync, rename). A plain harness: median and minimum of several runs.

use std::path::Path;
use wg_exec::config::{self, RouteTables};
use wg_exec::journal::applied::{self, Applied};

#[path = "support/mod.rs"]
mod support;
use support::time;

fn main() {
    let n = 10_000;
    let (cfg, _) = config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        &support::config_text(
            n,
            &format!(
                "{}    private_key_file: \"/etc/wg-exec/keys/wg0.key\",\n    dns: [\"192.0.2.53\", \"corp.example\", \"~.\"],\n",
                support::INTERFACE
            ),
            0,
        ),
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
