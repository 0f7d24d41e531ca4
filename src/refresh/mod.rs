//! `wg-exec refresh`'s library: what to do with a peer whose endpoint is a host name, given a
//! fresh answer, what the name resolved to before (the baseline, kept in the record of what was
//! applied) and what the device says. The command (src/commands/refresh.rs) runs the loop.

pub mod policy;
pub mod tracker;

pub use policy::{decide, Decision, Why};
pub use tracker::Refresher;
