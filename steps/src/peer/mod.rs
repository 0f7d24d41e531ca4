//! The device's peers: set at up, updated in place or removed by a reload.

mod remove;
mod set;
mod update;

pub use remove::PeerRemove;
pub use set::{by_name, resolve_all, PeerPlan, PeerSet};
pub use update::{PeerUpdates, PlannedUpdate};
