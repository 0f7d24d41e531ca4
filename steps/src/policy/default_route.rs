//! A full tunnel's step 3: the `/0` routes in its table, and the unreachable `::/0` of leak
//! protection.

use super::undo::undo;
use super::{table_of, v6_default, FullTunnel, PolicyObject, EAFNOSUPPORT};
use crate::kernel::{Kernel, KernelError, Route};
use crate::produced::Produced;
use crate::step::{join_human, Needs, Step, StepError, StepKind, Trace};

/// 3. The default routes in table T (and the unreachable `::/0`).
pub struct DefaultRoutes {
    pub tunnel: FullTunnel,
    /// The full tunnel's table, once the step that chooses it ran.
    pub table: Option<u32>,
    routes: Vec<Route>,
    unreachable: bool,
}

impl DefaultRoutes {
    pub fn new(tunnel: FullTunnel) -> DefaultRoutes {
        DefaultRoutes {
            tunnel,
            table: None,
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

impl Step for DefaultRoutes {
    fn kind(&self) -> StepKind {
        StepKind::DefaultRoute
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.tunnel.ns])
    }

    /// The table [`super::ChooseTable`] chose, handed on by the executor.
    fn takes(&mut self, earlier: &[Produced]) {
        self.table = Produced::full_tunnel_table(earlier.iter().copied());
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
        let t = table_of(self.table)?;
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
        if let Some(t) = self.table {
            errors.extend(self.take_unreachable(kernel, t).err());
        }
        StepError::first_of(errors)
    }

    fn rollback_is_noop(&self) -> bool {
        self.routes.is_empty() && !self.unreachable
    }

    /// Before the step, the unreachable route it is about to add; after it, only if it was
    /// added (a kernel without IPv6 has none to add, and status must not miss it).
    fn trace(&self) -> Trace {
        let before = self.routes.is_empty();
        match self.table {
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
