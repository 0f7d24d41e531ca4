//! wg-exec: brings one WireGuard interface up or down from a RON description, as a transaction.
//! The binary (main.rs) is a thin command line over this library (commands/, one file per
//! command), which tests use directly.

pub mod cli;
pub mod commands;
pub mod config;
pub mod executor;
pub mod faults;
pub mod journal;
pub mod journald;
pub mod keys;
pub mod linux;
pub mod lock;
pub mod outcome;
pub mod plan;
pub mod preflight;
pub mod privileges;
pub mod refresh;
pub mod reload;

/// Shared by the fuzz target (fuzz/) and the test that replays its corpus.
pub mod fuzzing {
    use crate::config::{self, RouteTables};
    use std::path::Path;

    /// Parses bytes as a configuration and, when valid, builds both plans and prints them.
    pub fn load_and_plan(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let tables = RouteTables::builtin();
        if let Ok((cfg, _warnings)) = config::parse("wg0", Path::new("fuzz.ron"), text, &tables) {
            let _ = crate::executor::print(&crate::plan::up(&cfg));
            let _ = crate::executor::print(&crate::plan::down_from_config(&cfg));
        }
    }
}
