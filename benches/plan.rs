//! `cargo bench --bench plan`: loading, validating and planning a configuration of 10,000 peers
//! (what every `up` and `down` does before its first privileged call). A plain harness: run it
//! several times and report the median and the minimum.

use std::path::Path;
use std::time::{Duration, Instant};
use wg_exec::config::{self, RouteTables};
use wg_exec::{executor, plan};

#[path = "support/mod.rs"]
mod support;

fn main() {
    let n = 10_000;
    let text = support::config_text(
        n,
        &format!(
            "{}    private_key_file: \"/etc/wg-exec/keys/wg0.key\",\n",
            support::INTERFACE
        ),
        0,
    );
    let runs = 30;
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        // As `up` does: the system's table names, parse and validate, both plans.
        let tables = RouteTables::system();
        let (cfg, warnings) =
            config::parse("wg0", Path::new("/etc/wg-exec/wg0.ron"), &text, &tables).expect("valid");
        let up = plan::up(&cfg);
        let down = plan::down_from_config(&cfg, false);
        times.push(started.elapsed());
        assert_eq!(cfg.peers.len(), n as usize);
        assert!(warnings.is_empty());
        assert_eq!(up.len(), 8);
        assert_eq!(down.len(), 1);
        std::hint::black_box((&up, &down));
    }
    // `--print` of the same plan, for scale (not part of the target).
    let (cfg, _) = config::parse("wg0", Path::new("x"), &text, &RouteTables::builtin()).unwrap();
    let started = Instant::now();
    let printed = executor::print(&plan::up(&cfg));
    let print_time = started.elapsed();
    times.sort();
    println!(
        "load + validate + plan, {n} peers ({} KiB of RON): median {:.1} ms, min {:.1} ms over {runs} runs (target < 50 ms); --print of it {:.1} ms ({} lines)",
        text.len() / 1024,
        times[runs / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        print_time.as_secs_f64() * 1e3,
        printed.lines().count()
    );
}
