//! wg-exec: brings one WireGuard interface up or down from a RON description, as a transaction.
//! The binary (main.rs) is a thin command line over this library (commands/, one file per
//! command), which tests use directly.

pub mod cli;
pub mod commands;
pub mod config;
pub mod executor;
pub mod faults;
pub mod fuzzing;
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
pub mod state;
pub mod status;
