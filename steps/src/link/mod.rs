//! The WireGuard link: created, moved to its namespace, given its MTU, brought up, deleted.

mod add;
mod mtu;
mod netns_move;
mod teardown;
mod up;

pub use add::LinkAdd;
pub(crate) use mtu::restore as restore_mtu;
pub use mtu::Mtu;
pub use netns_move::NetnsMove;
pub use teardown::Teardown;
pub use up::LinkUp;
