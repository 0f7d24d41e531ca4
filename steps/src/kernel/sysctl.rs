//! Sysctls (a full tunnel's src_valid_mark).

use super::{KernelError, Netns};

/// Sysctls under /proc/sys of a namespace.
pub trait Sysctl {
    /// A sysctl's value ("net/ipv4/conf/all/src_valid_mark"), trimmed.
    fn sysctl_get(&mut self, ns: &Netns, path: &str) -> Result<String, KernelError>;
    fn sysctl_set(&mut self, ns: &Netns, path: &str, value: &str) -> Result<(), KernelError>;
}
