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
//! Everything that outlives the link (rules, the unreachable route, the firewall table, the
//! sysctl) is in the step's [`Trace`], which the journal writes before the step runs.

use crate::kernel::{DeviceSettings, Kernel, KernelError, Netns, NftTable, PolicyRule, Route};
use crate::step::{join_human, object, Needs, Step, StepError, StepKind, Trace};
use ipnet::IpNet;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

/// The first table (and fwmark) tried, as wg-quick.
pub const FIRST_TABLE: u32 = 51820;
/// The suppress rule's priority; the fwmark rule comes right after it. Fixed, below main's
/// 32766 and clear of NetworkManager's 30768–31766, so that down deletes exactly these.
pub const SUPPRESS_PRIORITY: u32 = 31820;
pub const FWMARK_PRIORITY: u32 = 31821;
/// The sysctl that makes IPv4's reverse-path filter use the packet mark.
pub const SRC_VALID_MARK: &str = "net/ipv4/conf/all/src_valid_mark";
const RT_TABLE_MAIN: u32 = 254;
const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
/// A kernel without IPv6, or without IPv6 policy routing, answers IPv6 requests with this.
const EAFNOSUPPORT: i32 = 97;

/// The table chosen by [`ChooseTable`], read by the later steps.
pub type TableSlot = Rc<Cell<Option<u32>>>;

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

fn table_of(slot: &TableSlot) -> Result<u32, StepError> {
    slot.get().ok_or_else(|| {
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
        out.push(PolicyRule {
            v6,
            priority: FWMARK_PRIORITY,
            table: t,
            fwmark: Some(t),
            invert: true,
            suppress_prefixlength: None,
            other: false,
        });
    }
    out
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

/// Undoes one object; what is already gone is not an error.
pub fn undo(kernel: &mut dyn Kernel, ns: &Netns, o: &PolicyObject) -> Result<(), StepError> {
    // What never came to be on a kernel without IPv6 is gone too.
    let gone =
        |e: &KernelError| e.is_errno(ENOENT) || e.is_errno(ESRCH) || e.is_errno(EAFNOSUPPORT);
    let in_ns = match ns {
        Netns::Current => String::new(),
        other => format!(" in {other}"),
    };
    match o {
        PolicyObject::Rule(r) => match kernel.rule_list(ns) {
            Ok(rules) => undo_rule(kernel, ns, r, &rules),
            Err(e) if gone(&e) => Ok(()),
            Err(e) => Err(StepError::new(format!("list the rules{in_ns}"), e)),
        },
        PolicyObject::Unreachable { dst, table } => {
            match kernel.route_unreachable(ns, dst, *table, false) {
                Err(e) if !gone(&e) => Err(StepError::new(
                    format!("delete route unreachable {dst} table {table}{in_ns}"),
                    e,
                )),
                _ => Ok(()),
            }
        }
        PolicyObject::Nft(t) => {
            let tables = kernel
                .nft_tables(ns)
                .map_err(|e| StepError::new(format!("list nftables tables{in_ns}"), e))?;
            if !tables.contains(t) {
                return Ok(());
            }
            kernel
                .nft_apply(ns, &format!("delete table {t}\n"))
                .map_err(|e| StepError::new(format!("delete nftables table {t}{in_ns}"), e))
        }
        PolicyObject::Sysctl { path, old } => {
            if old == "1" {
                return Ok(());
            }
            let action = || format!("restore {}={old}{in_ns}", path.replace('/', "."));
            let now = kernel
                .sysctl_get(ns, path)
                .map_err(|e| StepError::new(action(), e))?;
            // Only what wg-exec set: a value someone changed since is theirs.
            if now != "1" {
                return Ok(());
            }
            kernel
                .sysctl_set(ns, path, old)
                .map_err(|e| StepError::new(action(), e))
        }
    }
}

/// Deletes rule `r` when a rule equal to it in every field is among `rules` (the kernel's delete
/// compares only some fields: not the invert flag, nor selectors the request leaves out), so
/// that another tool's rule at the same priority is never taken.
fn undo_rule(
    kernel: &mut dyn Kernel,
    ns: &Netns,
    r: &PolicyRule,
    rules: &[PolicyRule],
) -> Result<(), StepError> {
    let in_ns = match ns {
        Netns::Current => String::new(),
        other => format!(" in {other}"),
    };
    if !rules.contains(r) {
        let alike = PolicyRule {
            other: true,
            ..r.clone()
        };
        if rules.contains(&alike) {
            log::warn!(
                "a rule like {r}{in_ns} is there with more selectors than wg-exec adds: not wg-exec's, left"
            );
        }
        return Ok(());
    }
    match kernel.rule_del(ns, r) {
        Err(e) if !(e.is_errno(ENOENT) || e.is_errno(EAFNOSUPPORT)) => {
            Err(StepError::new(format!("delete {r}{in_ns}"), e))
        }
        _ => Ok(()),
    }
}

/// Undoes objects in reverse order, collecting failures (each is tried). The rules are listed
/// once: deleting one of ours changes nothing about the others.
fn undo_all(kernel: &mut dyn Kernel, ns: &Netns, objects: &[PolicyObject]) -> Vec<StepError> {
    let mut rules: Option<Vec<PolicyRule>> = None;
    let mut failures = Vec::new();
    for o in objects.iter().rev() {
        let result = match (o, &rules) {
            (PolicyObject::Rule(r), Some(listed)) => undo_rule(kernel, ns, r, listed),
            (PolicyObject::Rule(r), None) => match kernel.rule_list(ns) {
                Ok(listed) => {
                    let result = undo_rule(kernel, ns, r, &listed);
                    rules = Some(listed);
                    result
                }
                // Listing failed: as `undo` says it, one rule at a time.
                Err(_) => undo(kernel, ns, o),
            },
            _ => undo(kernel, ns, o),
        };
        failures.extend(result.err());
    }
    failures
}

fn first(errors: Vec<StepError>) -> Result<(), StepError> {
    let mut it = errors.into_iter();
    match it.next() {
        None => Ok(()),
        Some(e) => Err(e.with_undo(it.collect())),
    }
}

/// 1. The table and fwmark.
pub struct ChooseTable {
    pub tunnel: FullTunnel,
    pub slot: TableSlot,
    /// The fwmark this step set (to clear on rollback).
    set: bool,
}

impl ChooseTable {
    pub fn new(tunnel: FullTunnel, slot: TableSlot) -> ChooseTable {
        ChooseTable {
            tunnel,
            slot,
            set: false,
        }
    }
}

impl Step for ChooseTable {
    fn kind(&self) -> StepKind {
        StepKind::Fwmark
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.tunnel.ns])
    }

    fn describe(&self) -> String {
        self.tunnel.describe()
    }

    fn print(&self) -> Vec<String> {
        match self.tunnel.fwmark {
            Some(m) => vec![format!(
                "# full tunnel: table {m}, the configured fwmark 0x{m:x}"
            )],
            None => vec![
                format!("TABLE={FIRST_TABLE}  # or the first number above it that no route or rule uses (chosen at up)"),
                format!(
                    "{}wg set {} fwmark $TABLE",
                    self.tunnel.ns.exec_prefix(),
                    self.tunnel.name
                ),
            ],
        }
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if let Some(t) = self.tunnel.fwmark {
            let ns = self.tunnel.ns.clone();
            // A table that already has a default route (a configured fwmark naming a table in use)
            // is refused: replacing that route, and deleting it at down, would take someone's
            // uplink.
            let existing = kernel
                .table_routes(&ns, t)
                .map_err(|e| StepError::new(format!("list the routes of table {t} in {ns}"), e))?;
            let wanted_v6 = self.tunnel.v6 || self.tunnel.leak_protected();
            if let Some((dst, _)) = existing.iter().find(|(d, _)| {
                d.prefix_len() == 0
                    && if matches!(d, IpNet::V6(_)) {
                        wanted_v6
                    } else {
                        self.tunnel.v4
                    }
            }) {
                return Err(StepError::new(
                    format!("use table {t} (the fwmark) for {}", self.tunnel.describe()),
                    KernelError {
                        errno: Some(EEXIST),
                        message: format!(
                            "table {t} already has a route to {dst}: the fwmark names a table in use; choose another fwmark, or leave it unset for a free table"
                        ),
                    },
                ));
            }
            self.slot.set(Some(t));
            return Ok(());
        }
        let ns = &self.tunnel.ns;
        let used = kernel.tables_in_use(ns).map_err(|e| {
            StepError::new(
                format!("list the routing tables and rules in use in {ns}"),
                e,
            )
        })?;
        let t = (FIRST_TABLE..=u32::MAX)
            .find(|t| !used.contains(t))
            .ok_or_else(|| {
                StepError::new(
                    "choose a free routing table",
                    KernelError::new(format!("every table from {FIRST_TABLE} is in use")),
                )
            })?;
        kernel
            .wg_set_device(
                ns,
                &self.tunnel.name,
                &DeviceSettings {
                    fwmark: Some(t),
                    ..DeviceSettings::default()
                },
            )
            .map_err(|e| StepError::new(format!("set fwmark 0x{t:x} on {}", self.describe()), e))?;
        self.set = true;
        self.slot.set(Some(t));
        log::info!(
            "{}: full tunnel through table {t} (fwmark 0x{t:x})",
            self.describe()
        );
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if self.set {
            kernel
                .wg_set_device(
                    &self.tunnel.ns,
                    &self.tunnel.name,
                    &DeviceSettings {
                        fwmark: Some(0),
                        ..DeviceSettings::default()
                    },
                )
                .map_err(|e| {
                    StepError::new(format!("clear the fwmark of {}", self.describe()), e)
                })?;
            self.set = false;
        }
        self.slot.set(None);
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        !self.set
    }
}

/// 2. The rules.
pub struct PolicyRules {
    pub tunnel: FullTunnel,
    pub slot: TableSlot,
    added: Vec<PolicyRule>,
}

impl PolicyRules {
    pub fn new(tunnel: FullTunnel, slot: TableSlot) -> PolicyRules {
        PolicyRules {
            tunnel,
            slot,
            added: Vec::new(),
        }
    }
}

impl Step for PolicyRules {
    fn kind(&self) -> StepKind {
        StepKind::Rules
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.tunnel.ns])
    }

    fn describe(&self) -> String {
        let n = self.tunnel.rule_families().len() * 2;
        format!("{n} rules for {}", self.tunnel.describe())
    }

    fn print(&self) -> Vec<String> {
        let t = self.tunnel.printed_table();
        let ip = self.tunnel.ns.ip_prefix();
        self.tunnel
            .rule_families()
            .into_iter()
            .flat_map(|v6| {
                let f = if v6 { "-6" } else { "-4" };
                [
                    format!("{ip} {f} rule add priority {SUPPRESS_PRIORITY} table main suppress_prefixlength 0"),
                    format!("{ip} {f} rule add priority {FWMARK_PRIORITY} not fwmark {t} table {t}"),
                ]
            })
            .collect()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let t = table_of(&self.slot)?;
        let ns = self.tunnel.ns.clone();
        let want = rules(&self.tunnel, t);
        // A rule of anyone's at our priorities would make down's exact delete ambiguous, and
        // ours land beside it in an order nobody chose: refuse before adding any.
        let existing = kernel
            .rule_list(&ns)
            .map_err(|e| StepError::new(format!("list the routing rules in {ns}"), e))?;
        if let Some(r) = existing.iter().find(|r| {
            want.iter()
                .any(|w| w.v6 == r.v6 && w.priority == r.priority)
        }) {
            return Err(StepError::new(
                format!("add the full tunnel's rules for {}", self.tunnel.describe()),
                KernelError {
                    errno: Some(EEXIST),
                    message: format!(
                        "priority {} is taken by another rule ({}{}); wg-exec's full tunnel uses {SUPPRESS_PRIORITY} and {FWMARK_PRIORITY} (is another full tunnel up?)",
                        r.priority,
                        r,
                        if r.other { " with more selectors" } else { "" }
                    ),
                },
            ));
        }
        let leak_only_v6 = !self.tunnel.v6;
        for rule in want {
            match kernel.rule_add(&ns, &rule) {
                // IPv6 only for leak protection, on a kernel without IPv6: nothing can leak.
                Err(e) if rule.v6 && leak_only_v6 && e.is_errno(EAFNOSUPPORT) => {
                    log::info!(
                        "{ns} has no IPv6 policy routing ({e}): no IPv6 leak protection needed"
                    );
                    continue;
                }
                Err(e) => {
                    let undo = undo_all(
                        kernel,
                        &ns,
                        &self
                            .added
                            .drain(..)
                            .map(PolicyObject::Rule)
                            .collect::<Vec<_>>(),
                    );
                    return Err(StepError::new(format!("add {rule} in {ns}"), e).with_undo(undo));
                }
                Ok(()) => self.added.push(rule),
            }
        }
        log::info!("added {}", self.describe());
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let objects: Vec<PolicyObject> = self.added.drain(..).map(PolicyObject::Rule).collect();
        first(undo_all(kernel, &self.tunnel.ns, &objects))
    }

    fn rollback_is_noop(&self) -> bool {
        self.added.is_empty()
    }

    /// Before the step, the rules it is about to add; after it, those it added.
    fn trace(&self) -> Trace {
        let rules = match (self.slot.get(), self.added.is_empty()) {
            (Some(t), true) => rules(&self.tunnel, t),
            (Some(_), false) => self.added.clone(),
            (None, _) => return Trace::None,
        };
        Trace::Policy {
            ns: self.tunnel.ns.clone(),
            objects: rules.into_iter().map(PolicyObject::Rule).collect(),
        }
    }
}

/// 3. The default routes in table T (and the unreachable `::/0`).
pub struct DefaultRoutes {
    pub tunnel: FullTunnel,
    pub slot: TableSlot,
    routes: Vec<Route>,
    unreachable: bool,
}

impl DefaultRoutes {
    pub fn new(tunnel: FullTunnel, slot: TableSlot) -> DefaultRoutes {
        DefaultRoutes {
            tunnel,
            slot,
            routes: Vec::new(),
            unreachable: false,
        }
    }

    fn defaults(&self, t: u32) -> Vec<Route> {
        let mut out = Vec::new();
        if self.tunnel.v4 {
            out.push(Route::new("0.0.0.0/0".parse().unwrap(), t, None));
        }
        if self.tunnel.v6 {
            out.push(Route::new("::/0".parse().unwrap(), t, None));
        }
        out
    }
}

fn v6_default() -> IpNet {
    "::/0".parse().unwrap()
}

impl Step for DefaultRoutes {
    fn kind(&self) -> StepKind {
        StepKind::DefaultRoute
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.tunnel.ns])
    }

    fn describe(&self) -> String {
        let mut what: Vec<String> = Vec::new();
        if self.tunnel.v4 {
            what.push("0.0.0.0/0".into());
        }
        if self.tunnel.v6 {
            what.push("::/0".into());
        }
        let mut s = format!("{} via {}", join_human(&what), self.tunnel.describe());
        if self.tunnel.leak_protected() {
            s.push_str(" and unreachable ::/0");
        }
        s
    }

    fn print(&self) -> Vec<String> {
        let t = self.tunnel.printed_table();
        let ip = self.tunnel.ns.ip_prefix();
        let mut out = Vec::new();
        if self.tunnel.v4 {
            out.push(format!(
                "{ip} -4 route replace 0.0.0.0/0 dev {} table {t}",
                self.tunnel.name
            ));
        }
        if self.tunnel.v6 {
            out.push(format!(
                "{ip} -6 route replace ::/0 dev {} table {t}",
                self.tunnel.name
            ));
        }
        if self.tunnel.leak_protected() {
            out.push(format!(
                "{ip} -6 route add unreachable ::/0 table {t}  # ipv6_leak_protection"
            ));
        }
        out
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let t = table_of(&self.slot)?;
        let ns = self.tunnel.ns.clone();
        let name = self.tunnel.name.clone();
        if self.tunnel.leak_protected() {
            match kernel.route_unreachable(&ns, &v6_default(), t, true) {
                Ok(()) => self.unreachable = true,
                Err(e) if e.is_errno(EAFNOSUPPORT) => {
                    log::info!("{ns} has no IPv6 ({e}): no IPv6 leak protection needed")
                }
                Err(e) => {
                    return Err(StepError::new(
                        format!("add route unreachable ::/0 table {t} in {ns}"),
                        e,
                    ))
                }
            }
        }
        let routes = self.defaults(t);
        if let Err(b) = kernel.route_replace(&ns, &name, &routes) {
            let (i, cause) = b
                .failed
                .first()
                .cloned()
                .unwrap_or((0, KernelError::new("unknown failure")));
            let mut undo: Vec<StepError> = Vec::new();
            if let Err(b) = kernel.route_del(&ns, &name, &routes) {
                if let Some((j, e)) = b.failed.first().cloned() {
                    undo.push(StepError::new(
                        format!("delete route {} dev {}", routes[j], self.tunnel.describe()),
                        e,
                    ));
                }
            }
            undo.extend(self.take_unreachable(kernel, t).err());
            return Err(StepError::new(
                format!("replace route {} dev {}", routes[i], self.tunnel.describe()),
                cause,
            )
            .with_undo(undo));
        }
        self.routes = routes;
        log::info!("installed {}", self.describe());
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let ns = self.tunnel.ns.clone();
        let mut errors = Vec::new();
        if !self.routes.is_empty() {
            let routes = std::mem::take(&mut self.routes);
            if let Err(b) = kernel.route_del(&ns, &self.tunnel.name, &routes) {
                if let Some((i, e)) = b.failed.first().cloned() {
                    errors.push(StepError::new(
                        format!("delete route {} dev {}", routes[i], self.tunnel.describe()),
                        e,
                    ));
                }
            }
        }
        if let Some(t) = self.slot.get() {
            errors.extend(self.take_unreachable(kernel, t).err());
        }
        first(errors)
    }

    fn rollback_is_noop(&self) -> bool {
        self.routes.is_empty() && !self.unreachable
    }

    /// Before the step, the unreachable route it is about to add; after it, only if it was
    /// added (a kernel without IPv6 has none to add, and status must not miss it).
    fn trace(&self) -> Trace {
        let before = self.routes.is_empty();
        match self.slot.get() {
            Some(t) if self.tunnel.leak_protected() && (before || self.unreachable) => {
                Trace::Policy {
                    ns: self.tunnel.ns.clone(),
                    objects: vec![PolicyObject::Unreachable {
                        dst: v6_default(),
                        table: t,
                    }],
                }
            }
            _ => Trace::None,
        }
    }
}

impl DefaultRoutes {
    fn take_unreachable(&mut self, kernel: &mut dyn Kernel, t: u32) -> Result<(), StepError> {
        if !self.unreachable {
            return Ok(());
        }
        undo(
            kernel,
            &self.tunnel.ns,
            &PolicyObject::Unreachable {
                dst: v6_default(),
                table: t,
            },
        )?;
        self.unreachable = false;
        Ok(())
    }
}

/// 4. The firewall table of each tunnelled family.
pub struct Firewall {
    pub tunnel: FullTunnel,
    pub slot: TableSlot,
    added: Vec<NftTable>,
}

impl Firewall {
    pub fn new(tunnel: FullTunnel, slot: TableSlot) -> Firewall {
        Firewall {
            tunnel,
            slot,
            added: Vec::new(),
        }
    }

    pub fn tables(&self) -> Vec<NftTable> {
        let mut out = Vec::new();
        for (on, family) in [(self.tunnel.v4, "ip"), (self.tunnel.v6, "ip6")] {
            if on {
                out.push(NftTable {
                    family: family.into(),
                    name: nft_table_name(&self.tunnel.name),
                });
            }
        }
        out
    }
}

/// The firewall table's name: "wg-exec-" and the interface's name, in which the characters an
/// interface name may have but an nft identifier may not (`=`, `+`, …), and `_` itself (so that
/// two names never give one table), are written `_xHH`.
pub fn nft_table_name(iface: &str) -> String {
    let mut name = String::from("wg-exec-");
    for c in iface.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => name.push(c),
            other => name.push_str(&format!("_x{:02x}", other as u32)),
        }
    }
    name
}

/// The nftables script of one family's table (`mark` as text: a number or "$TABLE").
///  - preraw (prerouting, raw): packets for the tunnel's addresses that arrive on another
///    interface are dropped, unless a local address sent them (wg-quick's anti-spoofing);
///  - premangle (prerouting, mangle): a UDP packet whose connection carries mark T gets mark T
///    back, before the routing decision and its reverse-path check (and before NixOS's nftables
///    rpfilter at mangle+10); only mark T, so other tools' marks are left alone (wg-quick
///    copies every UDP connection's mark);
///  - postmangle (postrouting, mangle): the mark of WireGuard's outgoing packets is saved in
///    their connection.
pub fn firewall_script(table: &NftTable, dev: &str, mark: &str, addresses: &[IpNet]) -> String {
    let (f, t) = (&table.family, &table.name);
    let daddr = if f == "ip6" { "ip6 daddr" } else { "ip daddr" };
    let mut s = format!("create table {f} {t}\n");
    s.push_str(&format!(
        "add chain {f} {t} preraw {{ type filter hook prerouting priority -300; policy accept; }}\n"
    ));
    for a in addresses {
        if (f == "ip6") == matches!(a, IpNet::V6(_)) {
            s.push_str(&format!(
                "add rule {f} {t} preraw iifname != \"{dev}\" {daddr} {} fib saddr type != local drop\n",
                a.addr()
            ));
        }
    }
    s.push_str(&format!(
        "add chain {f} {t} premangle {{ type filter hook prerouting priority -150; policy accept; }}\n"
    ));
    s.push_str(&format!(
        "add rule {f} {t} premangle meta l4proto udp ct mark {mark} meta mark set ct mark\n"
    ));
    s.push_str(&format!(
        "add chain {f} {t} postmangle {{ type filter hook postrouting priority -150; policy accept; }}\n"
    ));
    s.push_str(&format!(
        "add rule {f} {t} postmangle meta l4proto udp meta mark {mark} ct mark set meta mark\n"
    ));
    s
}

impl Step for Firewall {
    fn kind(&self) -> StepKind {
        StepKind::Firewall
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.tunnel.ns])
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self.tables().iter().map(|t| t.to_string()).collect();
        format!(
            "nftables table{} {} for {}",
            if names.len() == 1 { "" } else { "s" },
            join_human(&names),
            self.tunnel.describe()
        )
    }

    fn print(&self) -> Vec<String> {
        let mark = self.tunnel.printed_table();
        let mut out = Vec::new();
        for t in self.tables() {
            out.push(format!("{}nft -f - <<'EOF'", self.tunnel.ns.exec_prefix()));
            out.extend(
                firewall_script(&t, &self.tunnel.name, &mark, &self.tunnel.addresses)
                    .lines()
                    .map(str::to_string),
            );
            out.push("EOF".into());
        }
        out
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let t = table_of(&self.slot)?;
        let ns = self.tunnel.ns.clone();
        for table in self.tables() {
            let script = firewall_script(
                &table,
                &self.tunnel.name,
                &t.to_string(),
                &self.tunnel.addresses,
            );
            if let Err(e) = kernel.nft_apply(&ns, &script) {
                let objects: Vec<PolicyObject> =
                    self.added.drain(..).map(PolicyObject::Nft).collect();
                let undo = undo_all(kernel, &ns, &objects);
                return Err(
                    StepError::new(format!("create nftables table {table} in {ns}"), e)
                        .with_undo(undo),
                );
            }
            self.added.push(table);
        }
        log::info!("added {}", self.describe());
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let objects: Vec<PolicyObject> = self.added.drain(..).map(PolicyObject::Nft).collect();
        first(undo_all(kernel, &self.tunnel.ns, &objects))
    }

    fn rollback_is_noop(&self) -> bool {
        self.added.is_empty()
    }

    fn trace(&self) -> Trace {
        Trace::Policy {
            ns: self.tunnel.ns.clone(),
            objects: self.tables().into_iter().map(PolicyObject::Nft).collect(),
        }
    }
}

/// 5. `net.ipv4.conf.all.src_valid_mark=1` for an IPv4 full tunnel.
pub struct SrcValidMark {
    pub tunnel: FullTunnel,
    /// The value before, when this step changed it.
    old: Option<String>,
}

impl SrcValidMark {
    pub fn new(tunnel: FullTunnel) -> SrcValidMark {
        SrcValidMark { tunnel, old: None }
    }
}

impl Step for SrcValidMark {
    fn kind(&self) -> StepKind {
        StepKind::Sysctl
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.tunnel.ns])
    }

    fn describe(&self) -> String {
        let ns = match &self.tunnel.ns {
            Netns::Current => String::new(),
            other => format!(" in {other}"),
        };
        format!("{}=1{ns}", SRC_VALID_MARK.replace('/', "."))
    }

    fn print(&self) -> Vec<String> {
        vec![format!(
            "{}sysctl -q {}=1  # only when it is not 1; put back on down",
            self.tunnel.ns.exec_prefix(),
            SRC_VALID_MARK.replace('/', ".")
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let ns = self.tunnel.ns.clone();
        let action = || format!("set {}", self.describe());
        let now = kernel
            .sysctl_get(&ns, SRC_VALID_MARK)
            .map_err(|e| StepError::new(action(), e))?;
        // Already 1 (a read-only /proc/sys in a container, another tunnel): nothing to write,
        // and nothing to put back.
        if now == "1" {
            return Ok(());
        }
        kernel
            .sysctl_set(&ns, SRC_VALID_MARK, "1")
            .map_err(|e| StepError::new(action(), e))?;
        self.old = Some(now);
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if let Some(old) = self.old.take() {
            undo(
                kernel,
                &self.tunnel.ns,
                &PolicyObject::Sysctl {
                    path: SRC_VALID_MARK.into(),
                    old,
                },
            )?;
        }
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        self.old.is_none()
    }

    fn trace(&self) -> Trace {
        Trace::Sysctl {
            ns: self.tunnel.ns.clone(),
            path: SRC_VALID_MARK.into(),
        }
    }
}

/// wg-quick's MTU for a full tunnel without `mtu`: the smallest MTU of the routes to the
/// endpoints (the route's `mtu`, else its device's), else the default route's, else 1500; minus
/// 80 (an IPv6 outer header, UDP and WireGuard's framing). Runs after the peers, whose endpoints
/// it reads back from the device as resolved.
pub struct AutoMtu {
    pub name: String,
    pub ns: Netns,
    /// Where the UDP socket is, whose routes carry the encrypted packets.
    pub socket_ns: Netns,
    pub has_ipv6_addresses: bool,
    previous: Option<u32>,
}

/// IPv6 needs at least this.
const IPV6_MIN_MTU: u32 = 1280;

impl AutoMtu {
    pub fn new(name: String, ns: Netns, socket_ns: Netns, has_ipv6_addresses: bool) -> AutoMtu {
        AutoMtu {
            name,
            ns,
            socket_ns,
            has_ipv6_addresses,
            previous: None,
        }
    }

    /// The MTU to set.
    pub fn choose(&self, kernel: &mut dyn Kernel) -> Result<u32, StepError> {
        let dev = kernel
            .wg_get(&self.ns, &self.name)
            .map_err(|e| StepError::new(format!("read the endpoints of {}", self.describe()), e))?;
        let endpoints: BTreeSet<IpAddr> = dev
            .peers
            .iter()
            .filter_map(|p| p.endpoint.map(|e| e.ip()))
            .collect();
        let mut best: Option<u32> = None;
        for ip in &endpoints {
            let mtu = kernel.route_mtu(&self.socket_ns, *ip).map_err(|e| {
                StepError::new(
                    format!("find the route to endpoint {ip} in {}", self.socket_ns),
                    e,
                )
            })?;
            if let Some(m) = mtu {
                best = Some(best.map_or(m, |b| b.min(m)));
            }
        }
        if best.is_none() {
            // No endpoint with a route: the default route's (IPv4, as wg-quick).
            best = kernel
                .route_mtu(&self.socket_ns, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                .map_err(|e| {
                    StepError::new(format!("find the default route in {}", self.socket_ns), e)
                })?;
        }
        Ok(best.unwrap_or(1500).saturating_sub(80))
    }
}

impl Step for AutoMtu {
    fn kind(&self) -> StepKind {
        StepKind::AutoMtu
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns, &self.socket_ns])
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        vec![format!(
            "{} link set dev {} mtu $MTU  # automatic: the smallest MTU of the routes to the endpoints, else the default route's, else 1500; minus 80",
            self.ns.ip_prefix(),
            self.name
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let mtu = self.choose(kernel)?;
        let action = || format!("set the automatic mtu {mtu} on {}", self.describe());
        if mtu < IPV6_MIN_MTU && self.has_ipv6_addresses {
            return Err(StepError::new(
                action(),
                KernelError::new(format!(
                    "it is below IPv6's minimum of {IPV6_MIN_MTU} and the link has IPv6 addresses; set `mtu`"
                )),
            ));
        }
        let previous = kernel
            .link_mtu(&self.ns, &self.name)
            .map_err(|e| StepError::new(action(), e))?;
        if previous != mtu {
            kernel
                .link_set_mtu(&self.ns, &self.name, mtu)
                .map_err(|e| StepError::new(action(), e))?;
            self.previous = Some(previous);
        }
        log::info!("{}: automatic mtu {mtu}", self.describe());
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if let Some(previous) = self.previous.take() {
            kernel
                .link_set_mtu(&self.ns, &self.name, previous)
                .map_err(|e| {
                    StepError::new(format!("restore mtu {previous} on {}", self.describe()), e)
                })?;
        }
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        self.previous.is_none()
    }
}

/// Down and recovery: removes what the journal says a full tunnel made, newest first. Each
/// object is tried; what is already gone is fine, so it can run again after a failure.
pub struct RemovePolicy {
    pub ns: Netns,
    pub objects: Vec<PolicyObject>,
}

impl Step for RemovePolicy {
    fn kind(&self) -> StepKind {
        StepKind::PolicyTeardown
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self.objects.iter().map(|o| o.to_string()).collect();
        let ns = match &self.ns {
            Netns::Current => String::new(),
            other => format!(" in {other}"),
        };
        format!("{}{ns}", join_human(&names))
    }

    fn print(&self) -> Vec<String> {
        let ip = self.ns.ip_prefix();
        let ex = self.ns.exec_prefix();
        self.objects
            .iter()
            .rev()
            .map(|o| match o {
                PolicyObject::Rule(r) => {
                    let r = r.to_string();
                    let (fam, rest) = r.split_at(3);
                    format!("{ip} {fam}{}", rest.replacen("rule ", "rule del ", 1))
                }
                PolicyObject::Unreachable { dst, table } => {
                    format!("{ip} route del unreachable {dst} table {table}")
                }
                PolicyObject::Nft(t) => format!("{ex}nft delete table {t}"),
                PolicyObject::Sysctl { path, old } => format!(
                    "{ex}sysctl -q {}={old}  # only if wg-exec changed it and it is still 1",
                    path.replace('/', ".")
                ),
            })
            .collect()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        first(undo_all(kernel, &self.ns, &self.objects))
    }

    fn rollback(&mut self, _kernel: &mut dyn Kernel) -> Result<(), StepError> {
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        true
    }
}

/// A full tunnel's fwmark rule, as up adds it: "not fwmark T lookup T" at its priority.
fn is_fwmark_rule(r: &PolicyRule) -> bool {
    !r.other
        && r.priority == FWMARK_PRIORITY
        && r.invert
        && r.fwmark == Some(r.table)
        && r.suppress_prefixlength.is_none()
}

/// Down without a journal (an up by an older wg-exec, a journal set aside as unusable): what
/// a full tunnel of this interface would have made is found by its fixed shape (the rules at
/// wg-exec's two priorities, the unreachable `::/0` in their table, the firewall tables named
/// after the interface) and removed. The sysctl's old value is not known: it is left.
pub struct FindAndRemovePolicy {
    pub name: String,
    pub ns: Netns,
}

impl FindAndRemovePolicy {
    fn find(&self, kernel: &mut dyn Kernel) -> Result<Vec<PolicyObject>, StepError> {
        let ns = &self.ns;
        let mut out: Vec<PolicyObject> = Vec::new();
        // Only what the live link's fwmark names is this interface's (another interface's full
        // tunnel has the same shape at the same priorities, with its own mark): wg-quick's
        // del_if follows the live device the same way.
        let mark = match kernel.link_exists(ns, &self.name) {
            Ok(true) => match kernel.wg_get(ns, &self.name) {
                Ok(dev) => Some(dev.fwmark).filter(|m| *m != 0),
                Err(e) => {
                    log::warn!(
                        "{}: cannot read its fwmark ({e}); looking for what a full tunnel left by its shape",
                        object(&self.name, ns)
                    );
                    None
                }
            },
            Ok(false) => None,
            Err(e) if e.is_errno(ENOENT) => None,
            Err(e) => {
                return Err(StepError::new(
                    format!("look for {}", object(&self.name, ns)),
                    e,
                ))
            }
        };
        let rules = kernel
            .rule_list(ns)
            .map_err(|e| StepError::new(format!("list the routing rules in {ns}"), e))?;
        // The tables whose full tunnel rules go: the live mark's; without it (no link, or an
        // unreadable one), a table that no route through a device uses any more. up allows
        // one full tunnel per namespace (the fixed priorities), so such rules are an orphan's.
        let mut tables: Vec<u32> = Vec::new();
        match mark {
            Some(t) => tables.push(t),
            None => {
                for r in rules.iter().filter(|r| is_fwmark_rule(r)) {
                    let routes = kernel.table_routes(ns, r.table).map_err(|e| {
                        StepError::new(format!("list the routes of table {} in {ns}", r.table), e)
                    })?;
                    if routes.iter().all(|(_, unreachable)| *unreachable)
                        && !tables.contains(&r.table)
                    {
                        tables.push(r.table);
                    }
                }
            }
        }
        for t in tables {
            let mut found = false;
            for v6 in [false, true] {
                let mine = PolicyRule {
                    v6,
                    priority: FWMARK_PRIORITY,
                    table: t,
                    fwmark: Some(t),
                    invert: true,
                    suppress_prefixlength: None,
                    other: false,
                };
                if !rules.contains(&mine) {
                    continue;
                }
                found = true;
                // Its suppress rule goes with it (first, as up added it first).
                let suppress = PolicyRule {
                    v6,
                    priority: SUPPRESS_PRIORITY,
                    table: RT_TABLE_MAIN,
                    fwmark: None,
                    invert: false,
                    suppress_prefixlength: Some(0),
                    other: false,
                };
                if rules.contains(&suppress) {
                    out.push(PolicyObject::Rule(suppress));
                }
                out.push(PolicyObject::Rule(mine));
            }
            if found {
                out.push(PolicyObject::Unreachable {
                    dst: v6_default(),
                    table: t,
                });
            }
        }
        let name = nft_table_name(&self.name);
        let tables = kernel
            .nft_tables(ns)
            .map_err(|e| StepError::new(format!("list nftables tables in {ns}"), e))?;
        out.extend(
            tables
                .into_iter()
                .filter(|t| t.name == name && (t.family == "ip" || t.family == "ip6"))
                .map(PolicyObject::Nft),
        );
        Ok(out)
    }
}

impl Step for FindAndRemovePolicy {
    fn kind(&self) -> StepKind {
        StepKind::PolicyTeardown
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        format!(
            "the rules at priorities {SUPPRESS_PRIORITY} and {FWMARK_PRIORITY} and the nftables tables wg-exec-{} of a full tunnel, if any, {}",
            self.name,
            match &self.ns {
                Netns::Current => "here".to_string(),
                other => format!("in {other}"),
            }
        )
    }

    fn print(&self) -> Vec<String> {
        vec![format!(
            "# delete {} (the journal is missing)",
            self.describe()
        )]
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let found = self.find(kernel)?;
        if !found.is_empty() {
            let names: Vec<String> = found.iter().map(|o| o.to_string()).collect();
            log::warn!(
                "{}: no journal; removing what a full tunnel left: {}",
                self.name,
                join_human(&names)
            );
        }
        first(undo_all(kernel, &self.ns, &found))
    }

    fn rollback(&mut self, _kernel: &mut dyn Kernel) -> Result<(), StepError> {
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::nft_table_name;

    #[test]
    fn table_names_are_nft_identifiers() {
        assert_eq!(nft_table_name("wg0"), "wg-exec-wg0");
        assert_eq!(nft_table_name("wg.1-a"), "wg-exec-wg.1-a");
        assert_eq!(nft_table_name("wg+1=x"), "wg-exec-wg_x2b1_x3dx");
        // `_` is escaped too, so that two names never meet.
        assert_eq!(nft_table_name("wg_x2b1"), "wg-exec-wg_x5fx2b1");
        assert_ne!(nft_table_name("wg+1"), nft_table_name("wg_x2b1"));
    }
}
