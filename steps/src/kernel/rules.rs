//! Routing policy rules (a full tunnel's).

use super::{KernelError, Netns};
use std::collections::BTreeSet;
use std::fmt;

/// Routing policy rules (rtnetlink's rules).
pub trait Rules {
    /// Every routing policy rule of both families.
    fn rule_list(&mut self, ns: &Netns) -> Result<Vec<PolicyRule>, KernelError>;
    /// Adds a rule; EEXIST when one with all the same fields exists.
    fn rule_add(&mut self, ns: &Netns, rule: &PolicyRule) -> Result<(), KernelError>;
    /// Deletes the rule that matches every field, priority included; ENOENT when there is none.
    fn rule_del(&mut self, ns: &Netns, rule: &PolicyRule) -> Result<(), KernelError>;
    /// Every table number a route (of either family) or a rule (its table or its fwmark) uses.
    fn tables_in_use(&mut self, ns: &Netns) -> Result<BTreeSet<u32>, KernelError>;
}

/// A routing policy rule, by every field wg-exec sets or reads. wg-exec adds its own with an
/// explicit priority and deletes them by all fields, priority included, so that another tool's
/// rule of the same shape is never touched (wg-quick deletes every "suppress_prefixlength 0"
/// rule it finds).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PolicyRule {
    pub v6: bool,
    pub priority: u32,
    /// The table looked up.
    pub table: u32,
    /// Matches packets with this mark (all 32 bits), or without it when `invert`.
    pub fwmark: Option<u32>,
    pub invert: bool,
    /// Results whose prefix length is at most this are ignored (0: the table's default route).
    pub suppress_prefixlength: Option<u32>,
    #[cfg_attr(feature = "serde", serde(skip))]
    /// Read back only: the rule has selectors or an action wg-exec does not model (from, to,
    /// iif, goto…), so it is never one of wg-exec's.
    pub other: bool,
}

impl fmt::Display for PolicyRule {
    /// As `ip rule` would take it: "-6 rule priority 31821 not fwmark 0xca6c lookup 51820".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}rule priority {}",
            if self.v6 { "-6 " } else { "-4 " },
            self.priority
        )?;
        if let Some(m) = self.fwmark {
            write!(
                f,
                "{} fwmark 0x{m:x}",
                if self.invert { " not" } else { "" }
            )?;
        }
        match self.table {
            254 => write!(f, " lookup main")?,
            t => write!(f, " lookup {t}")?,
        }
        if let Some(p) = self.suppress_prefixlength {
            write!(f, " suppress_prefixlength {p}")?;
        }
        Ok(())
    }
}
