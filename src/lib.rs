//! wg-exec: brings one WireGuard interface up or down from a RON description, as a transaction.
//! The binary (main.rs) is a thin command line over this library, which tests use directly.

pub mod config;
pub mod executor;
pub mod linux;
pub mod plan;
pub mod preflight;
