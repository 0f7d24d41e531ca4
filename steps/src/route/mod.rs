//! The routes through the link: added at up, added or removed by a reload.

mod add;
mod remove;

pub use add::Routes;
pub use remove::RoutesRemove;
