//! `wg-exec check IFACE`: validate the configuration and its files, change nothing.

use super::{load, preflight};
use crate::cli::CheckArgs;
use crate::outcome::Outcome;

pub fn run(a: &CheckArgs) -> Outcome {
    let cfg = match load(&a.iface, a.config.as_deref()) {
        Ok(c) => c,
        Err(o) => return o,
    };
    if let Err(o) = preflight(&cfg) {
        return o;
    }
    println!(
        "{}: {} is valid ({} peer{})",
        cfg.name,
        cfg.path.display(),
        cfg.peers.len(),
        if cfg.peers.len() == 1 { "" } else { "s" }
    );
    Outcome::Done
}
