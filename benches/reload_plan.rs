//! `cargo bench --bench reload_plan`: the reload plan of a configuration of 10,000 peers against
//! the fake kernel (the diff alone: no parsing, no device read, no record), for 0, 1 and 100
//! changed peers (their keepalive set, as `scripts/bench --reload` changes them). A plain
//! harness: the median and the minimum of several runs.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use wg_exec::config::{self, Config, RouteTables};
use wg_exec::executor::{self, NoWatch};
use wg_exec::journal::applied::Applied;
use wg_exec::plan;
use wg_exec::plan::reload;
use wg_exec_steps::fake::FakeKernel;
use wg_exec_steps::Netns;

#[path = "support/mod.rs"]
mod support;

/// N peers as scripts/bench makes them, the last `changed` with a keepalive of 25.
fn config_text(n: u32, changed: u32) -> String {
    let interface = format!(
        "{}    private_key_file: \"/keys/wg0.key\",\n    backend: Kernel,\n",
        support::INTERFACE
    );
    support::config_text(n, &interface, changed)
}

fn parse(text: &str) -> Config {
    config::parse(
        "wg0",
        Path::new("/etc/wg-exec/wg0.ron"),
        text,
        &RouteTables::builtin(),
    )
    .expect("valid")
    .0
}

fn main() {
    let n = 10_000;
    let base = parse(&config_text(n, 0));
    let mut k = FakeKernel::new();
    k.put_key_file("/keys/wg0.key", 1);
    executor::up(
        &mut plan::up(&base),
        &mut k,
        &AtomicBool::new(false),
        &mut NoWatch,
    )
    .expect("up on the fake kernel");
    let recorded = Applied::of(&base);
    let live = reload::read_live(&mut k, &Netns::Current, "wg0")
        .unwrap()
        .expect("the link is there");
    let runs = 15;
    for changed in [0, 1, 100] {
        let cfg = parse(&config_text(n, changed));
        let mut times: Vec<Duration> = Vec::with_capacity(runs);
        let mut steps = 0;
        for _ in 0..runs {
            k.calls.clear();
            let started = Instant::now();
            assert!(reload::not_live(&cfg, &recorded).is_empty());
            assert!(reload::not_live_addresses(&cfg, &recorded, &live).is_empty());
            let p = reload::plan(&cfg, &recorded, &live, &mut k).expect("a plan");
            times.push(started.elapsed());
            steps = p.steps.len();
            std::hint::black_box(&p.steps);
        }
        assert_eq!(steps, usize::from(changed > 0));
        times.sort();
        println!(
            "reload plan, {n} peers, {changed} changed: median {:.2} ms, min {:.2} ms over {runs} runs ({steps} step{})",
            times[runs / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            if steps == 1 { "" } else { "s" }
        );
    }
}
