//! The link's addresses.

use super::{KernelError, Netns};
use ipnet::IpNet;

/// The link's addresses (rtnetlink's addresses).
pub trait Addresses {
    fn addr_add(&mut self, ns: &Netns, name: &str, addr: &IpNet) -> Result<(), KernelError>;
    fn addr_del(&mut self, ns: &Netns, name: &str, addr: &IpNet) -> Result<(), KernelError>;
    /// The addresses on the link, link-local ones left out.
    fn addr_list(&mut self, ns: &Netns, name: &str) -> Result<Vec<IpNet>, KernelError>;
}
