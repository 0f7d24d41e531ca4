//! Values a step chooses while it applies and later steps of the same plan take, handed on by the
//! executor (see [`crate::Step::produced`] and [`crate::Step::takes`]) instead of a shared cell.

/// What a step chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Produced {
    /// The full tunnel's routing table, which is also the device's fwmark
    /// ([`crate::ChooseTable`]); the rules, the default routes and the firewall use it, and the
    /// record of what was applied keeps it.
    FullTunnelTable(u32),
}

impl Produced {
    /// The full tunnel's table among `produced`, the latest when there were several.
    pub fn full_tunnel_table(produced: impl IntoIterator<Item = Produced>) -> Option<u32> {
        produced
            .into_iter()
            .map(|p| match p {
                Produced::FullTunnelTable(t) => t,
            })
            .last()
    }
}
