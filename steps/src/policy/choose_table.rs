//! A full tunnel's step 1: its table, which is also the device's fwmark (produced for the steps
//! after it).

use super::{FullTunnel, EEXIST, FIRST_TABLE};
use crate::kernel::{DeviceSettings, Kernel, KernelError};
use crate::produced::Produced;
use crate::step::{Needs, Step, StepError, StepKind};
use ipnet::IpNet;

/// 1. The table and fwmark.
pub struct ChooseTable {
    pub tunnel: FullTunnel,
    /// The table it chose (also the fwmark), for the steps after it.
    chosen: Option<u32>,
    /// The fwmark this step set (to clear on rollback).
    set: bool,
}

impl ChooseTable {
    pub fn new(tunnel: FullTunnel) -> ChooseTable {
        ChooseTable {
            tunnel,
            chosen: None,
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
            self.chosen = Some(t);
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
        self.chosen = Some(t);
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
        self.chosen = None;
        Ok(())
    }

    fn rollback_is_noop(&self) -> bool {
        !self.set
    }

    fn produced(&self) -> Option<Produced> {
        self.chosen.map(Produced::FullTunnelTable)
    }
}
