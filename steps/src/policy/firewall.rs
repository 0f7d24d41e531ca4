//! A full tunnel's step 4: one nftables table per tunnelled family (anti-spoofing, the mark kept in
//! conntrack).

use super::undo::undo_all;
use super::{table_of, FullTunnel, PolicyObject};
use crate::kernel::{Kernel, NftTable};
use crate::produced::Produced;
use crate::step::{join_human, Needs, Step, StepError, StepKind, Trace};
use ipnet::IpNet;

/// 4. The firewall table of each tunnelled family.
pub struct Firewall {
    pub tunnel: FullTunnel,
    /// The full tunnel's table, once the step that chooses it ran.
    pub table: Option<u32>,
    added: Vec<NftTable>,
}

impl Firewall {
    pub fn new(tunnel: FullTunnel) -> Firewall {
        Firewall {
            tunnel,
            table: None,
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

    /// The table [`super::ChooseTable`] chose, handed on by the executor.
    fn takes(&mut self, earlier: &[Produced]) {
        self.table = Produced::full_tunnel_table(earlier.iter().copied());
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
        let t = table_of(self.table)?;
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
        StepError::first_of(undo_all(kernel, &self.tunnel.ns, &objects))
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
