//! Installs a route through the link for each allowed IP (when `allowed_ips_as_routes`), after the
//! peers, in the configured table with the configured metric. All routes go in one pipeline.

use crate::kernel::{BatchError, Kernel, Netns, Route};
use crate::step::{join_human, object, Needs, Step, StepError, StepKind, Trace};
use crate::KernelError;

pub struct Routes {
    pub name: String,
    pub ns: Netns,
    pub routes: Vec<Route>,
    /// The table as the configuration wrote it ("main", "1234"), for `--print`.
    pub table_label: String,
    applied: bool,
}

impl Routes {
    pub fn new(name: String, ns: Netns, routes: Vec<Route>, table_label: String) -> Routes {
        Routes {
            name,
            ns,
            routes,
            table_label,
            applied: false,
        }
    }

    fn delete(&self, kernel: &mut dyn Kernel, which: &[Route]) -> Result<(), StepError> {
        kernel
            .route_del(&self.ns, &self.name, which)
            .map_err(|b| self.batch_error("delete", which, b))
    }

    /// "replace route 192.0.2.0/24 table 1234 via wg0: …" naming the first failure and the count.
    fn batch_error(&self, verb: &str, routes: &[Route], b: BatchError) -> StepError {
        let (first, cause) = b
            .failed
            .first()
            .cloned()
            .unwrap_or((0, KernelError::new("unknown failure")));
        let mut action = format!(
            "{verb} route {} dev {}",
            routes[first],
            object(&self.name, &self.ns)
        );
        if b.failed.len() > 1 {
            let others: Vec<String> = b.failed[1..]
                .iter()
                .take(5)
                .map(|(i, e)| format!("{} ({e})", routes[*i].dst))
                .collect();
            action.push_str(&format!(
                " (and {} more failed: {}{})",
                b.failed.len() - 1,
                join_human(&others),
                if b.failed.len() > 6 { ", …" } else { "" }
            ));
        }
        StepError::new(action, cause)
    }
}

impl Step for Routes {
    fn kind(&self) -> StepKind {
        StepKind::Routes
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        super::describe(&self.routes, &self.name, &self.ns)
    }

    fn print(&self) -> Vec<String> {
        self.routes
            .iter()
            .map(|r| {
                let mut line = format!(
                    "{} route replace {} dev {} table {}",
                    self.ns.ip_prefix(),
                    r.dst,
                    self.name,
                    self.table_label
                );
                if let Some(m) = r.metric {
                    line.push_str(&format!(" metric {m}"));
                }
                line
            })
            .collect()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if self.routes.is_empty() {
            return Ok(());
        }
        if let Err(b) = kernel.route_replace(&self.ns, &self.name, &self.routes) {
            let err = self.batch_error("replace", &self.routes, b);
            // Delete every route of the step, not only those reported applied: after a lost
            // reply nobody knows which went in, and routes through our own new link that are
            // absent are simply skipped.
            let undo = self
                .delete(kernel, &self.routes)
                .err()
                .into_iter()
                .collect();
            return Err(err.with_undo(undo));
        }
        self.applied = true;
        log::info!("installed {}", self.describe());
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if self.applied {
            self.delete(kernel, &self.routes)?;
            self.applied = false;
        }
        Ok(())
    }

    fn trace(&self) -> Trace {
        Trace::Routes {
            ns: self.ns.clone(),
            table: self.routes.first().map(|r| r.table).unwrap_or(0),
            count: self.routes.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeKernel;
    use crate::kernel::prelude::*;
    use crate::Backend;

    #[test]
    fn a_refused_route_is_named_and_the_others_are_removed() {
        let mut k = FakeKernel::new();
        k.link_add(&Netns::Current, "wg0", &Backend::Kernel)
            .unwrap();
        let before = k.state.clone();
        let routes: Vec<Route> = ["198.18.0.1/32", "198.18.0.2/32", "2001:db8::2/128"]
            .iter()
            .map(|d| Route {
                dst: d.parse().unwrap(),
                table: 1234,
                metric: Some(50),
            })
            .collect();
        k.fail_batch_item = Some((1, KernelError::from_errno(22, Some("Invalid prefix"))));
        let mut s = Routes::new("wg0".into(), Netns::Current, routes, "1234".into());
        let err = s.apply(&mut k).unwrap_err();
        assert_eq!(
            err.to_string(),
            "replace route 198.18.0.2/32 table 1234 metric 50 dev wg0: Invalid prefix: Invalid argument (os error 22)"
        );
        assert_eq!(k.state, before);
    }
}
