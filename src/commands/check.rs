//! `wg-exec check IFACE`: validate the configuration and its files, change nothing.

use super::{load, preflight};
use crate::cli::CheckArgs;
use crate::outcome::{Outcome, Script};

pub fn run(a: &CheckArgs) -> Script {
    let cfg = load(&a.iface, a.config.as_deref())?;
    preflight(&cfg)?;
    println!(
        "{}: {} is valid ({} peer{})",
        cfg.name,
        cfg.path.display(),
        cfg.peers.len(),
        if cfg.peers.len() == 1 { "" } else { "s" }
    );
    Ok(Outcome::Done)
}
