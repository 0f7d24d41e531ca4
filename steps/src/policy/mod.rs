//! A full tunnel (`table: "auto"` with a `/0` allowed IP), as wg-quick builds it and done right
//! where wg-quick is not (see ../shared/reference/wg-quick.md §1 and §4):
//!
//!  1. [`ChooseTable`]: the table T, which is also the device's fwmark: the configured fwmark,
//!     else the first number from 51820 that no route and no rule uses, set on the device.
//!     WireGuard's own packets carry mark T.
//!  2. [`PolicyRules`]: per family, "lookup main suppress_prefixlength 0" and then "not fwmark T
//!     lookup T", at fixed priorities (the suppress rule first), each deleted later by every
//!     field, priority included, so that another tool's rule of the same shape stays.
//!  3. [`DefaultRoutes`]: the `/0` route through the link in table T, only once both rules exist
//!     (before the suppress rule, traffic would leak into the tunnel), and for an IPv4-only
//!     tunnel an unreachable `::/0` in T, so that IPv6 does not leak around it.
//!  4. [`Firewall`]: one nftables table per tunnelled family that drops packets for the tunnel's
//!     addresses arriving on another interface, and keeps the mark of the tunnel's UDP flows in
//!     conntrack so that replies pass a strict reverse-path filter.
//!  5. [`SrcValidMark`]: `net.ipv4.conf.all.src_valid_mark=1` (rp_filter then honours the
//!     mark), written only when it is not 1 already, and put back on down.
//!
//! [`AutoMtu`] is wg-quick's MTU rule for a full tunnel with no `mtu`.
//!
//! The table flows as data: [`ChooseTable`] reports it through [`crate::Step::produced`], the
//! executor hands what earlier steps produced to each later one ([`crate::Step::takes`]), and the
//! command reads it from the steps for the record of what was applied.
//!
//! Everything that outlives the link (rules, the unreachable route, the firewall table, the
//! sysctl) is in the step's [`Trace`], which the journal writes before the step runs.

mod auto_mtu;
mod choose_table;
mod default_route;
mod find_and_remove;
mod firewall;
mod remove;
mod rules;
mod sysctl;
mod undo;

pub use auto_mtu::AutoMtu;
pub use choose_table::ChooseTable;
pub use default_route::DefaultRoutes;
pub use find_and_remove::FindAndRemovePolicy;
pub use firewall::{firewall_script, nft_table_name, Firewall};
pub use remove::RemovePolicy;
pub use rules::PolicyRules;
pub use sysctl::SrcValidMark;
pub use undo::undo;

use crate::kernel::{KernelError, Netns, NftTable, PolicyRule};
use crate::step::{object, StepError};
use ipnet::IpNet;

/// The first table (and fwmark) tried, as wg-quick.
pub const FIRST_TABLE: u32 = 51820;
/// The suppress rule's priority; the fwmark rule comes right after it. Fixed, below main's
/// 32766 and clear of NetworkManager's 30768–31766, so that down deletes exactly these.
pub const SUPPRESS_PRIORITY: u32 = 31820;
pub const FWMARK_PRIORITY: u32 = 31821;
/// The sysctl that makes IPv4's reverse-path filter use the packet mark.
pub const SRC_VALID_MARK: &str = "net/ipv4/conf/all/src_valid_mark";
pub(crate) const RT_TABLE_MAIN: u32 = 254;
pub(crate) const EEXIST: i32 = 17;
pub(crate) const ENOENT: i32 = 2;
pub(crate) const ESRCH: i32 = 3;
/// A kernel without IPv6, or without IPv6 policy routing, answers IPv6 requests with this.
pub(crate) const EAFNOSUPPORT: i32 = 97;

/// What a full tunnel covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullTunnel {
    pub name: String,
    /// Where the link lives: its routing, rules, firewall and sysctl.
    pub ns: Netns,
    /// Families with a `/0` allowed IP.
    pub v4: bool,
    pub v6: bool,
    /// An IPv4-only tunnel also gets IPv6 rules and an unreachable `::/0` in its table.
    pub ipv6_leak_protection: bool,
    /// The configured fwmark, which is then the table (as wg-quick).
    pub fwmark: Option<u32>,
    /// The link's addresses (the firewall protects them).
    pub addresses: Vec<IpNet>,
}

impl FullTunnel {
    /// The families that get rules: the tunnelled ones, and IPv6 for leak protection.
    pub fn rule_families(&self) -> Vec<bool> {
        let mut out = Vec::new();
        if self.v4 {
            out.push(false);
        }
        if self.v6 || (self.v4 && self.ipv6_leak_protection) {
            out.push(true);
        }
        out
    }

    fn leak_protected(&self) -> bool {
        self.v4 && !self.v6 && self.ipv6_leak_protection
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    /// The table for `--print`: the fwmark, or a shell variable the first line explains.
    fn printed_table(&self) -> String {
        match self.fwmark {
            Some(m) => m.to_string(),
            None => "$TABLE".into(),
        }
    }
}

pub(crate) fn table_of(table: Option<u32>) -> Result<u32, StepError> {
    table.ok_or_else(|| {
        StepError::new(
            "find the full tunnel's table",
            KernelError::new("the fwmark step has not chosen one"),
        )
    })
}

/// The rules of a full tunnel with table `t`, in the order they are added.
pub fn rules(ft: &FullTunnel, t: u32) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for v6 in ft.rule_families() {
        out.push(PolicyRule {
            v6,
            priority: SUPPRESS_PRIORITY,
            table: RT_TABLE_MAIN,
            fwmark: None,
            invert: false,
            suppress_prefixlength: Some(0),
            other: false,
        });
        out.push(fwmark_rule(v6, t));
    }
    out
}

/// wg-quick's `not fwmark T table T` rule of a full tunnel with table `t`.
pub(crate) fn fwmark_rule(v6: bool, t: u32) -> PolicyRule {
    PolicyRule {
        v6,
        priority: FWMARK_PRIORITY,
        table: t,
        fwmark: Some(t),
        invert: true,
        suppress_prefixlength: None,
        other: false,
    }
}

/// One thing a full tunnel leaves beyond the link, as the journal records it and down undoes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PolicyObject {
    Rule(PolicyRule),
    Unreachable {
        dst: IpNet,
        table: u32,
    },
    Nft(NftTable),
    /// The sysctl and the value it had before (only put back when wg-exec changed it).
    Sysctl {
        path: String,
        old: String,
    },
}

impl std::fmt::Display for PolicyObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyObject::Rule(r) => write!(f, "{r}"),
            PolicyObject::Unreachable { dst, table } => {
                write!(f, "route unreachable {dst} table {table}")
            }
            PolicyObject::Nft(t) => write!(f, "nftables table {t}"),
            PolicyObject::Sysctl { path, old } => {
                write!(f, "sysctl {}={old}", path.replace('/', "."))
            }
        }
    }
}

pub(crate) fn v6_default() -> IpNet {
    "::/0".parse().unwrap()
}
