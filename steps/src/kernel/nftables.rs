//! nftables tables (a full tunnel's firewall).

use super::{KernelError, Netns};
use std::fmt;

/// nftables.
pub trait Nftables {
    /// Loads an nftables script (`nft -f -`), atomically.
    fn nft_apply(&mut self, ns: &Netns, script: &str) -> Result<(), KernelError>;
    /// The nftables tables that exist.
    fn nft_tables(&mut self, ns: &Netns) -> Result<Vec<NftTable>, KernelError>;
}

/// An nftables table, by family ("ip", "ip6") and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NftTable {
    pub family: String,
    pub name: String,
}

impl fmt::Display for NftTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.family, self.name)
    }
}
