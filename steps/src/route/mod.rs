//! The routes through the link: added at up, added or removed by a reload.

mod add;
mod remove;

pub use add::Routes;
pub use remove::RoutesRemove;

use crate::kernel::{Netns, Route};
use crate::step::{counted, object};

/// The routing tables iproute2 names whatever its configuration says (rt_tables).
pub const NAMED_TABLES: [(&str, u32); 3] = [("default", 253), ("main", 254), ("local", 255)];

/// A table as `ip route` takes it: its name when it has a fixed one, else its number.
pub fn table_name(id: u32) -> String {
    NAMED_TABLES
        .iter()
        .find(|(_, n)| *n == id)
        .map_or_else(|| id.to_string(), |(name, _)| name.to_string())
}

/// "2 routes via wg0 in netns tunnel".
fn describe(routes: &[Route], name: &str, ns: &Netns) -> String {
    format!(
        "{} via {}",
        counted(routes.len(), "route"),
        object(name, ns)
    )
}
