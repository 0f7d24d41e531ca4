//! Reload: routes wg-exec added that the configuration no longer has (another table or metric
//! is another route), removed after the new ones are in place.

use crate::kernel::{Kernel, Netns, Route};
use crate::step::{join_human, Needs, Step, StepError, StepKind};

pub struct RoutesRemove {
    pub name: String,
    pub ns: Netns,
    pub routes: Vec<Route>,
    removed: bool,
}

impl RoutesRemove {
    pub fn new(name: String, ns: Netns, routes: Vec<Route>) -> RoutesRemove {
        RoutesRemove {
            name,
            ns,
            routes,
            removed: false,
        }
    }
}

impl Step for RoutesRemove {
    fn kind(&self) -> StepKind {
        StepKind::RoutesRemove
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
                let table = super::table_name(r.table);
                let mut line = format!(
                    "{} route del {} dev {} table {table}",
                    self.ns.ip_prefix(),
                    r.dst,
                    self.name,
                );
                if let Some(m) = r.metric {
                    line.push_str(&format!(" metric {m}"));
                }
                line
            })
            .collect()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if let Err(batch) = kernel.route_del(&self.ns, &self.name, &self.routes) {
            let failed: Vec<usize> = batch.failed.iter().map(|(i, _)| *i).collect();
            // Put back the ones that did go, so that the step undoes its own partial work.
            let gone: Vec<_> = (0..self.routes.len())
                .filter(|i| !failed.contains(i))
                .map(|i| self.routes[i].clone())
                .collect();
            let undo = match kernel.route_replace(&self.ns, &self.name, &gone) {
                Ok(()) => Vec::new(),
                Err(b) => b
                    .failed
                    .into_iter()
                    .map(|(i, e)| StepError::new(format!("put back route {}", gone[i]), e))
                    .collect(),
            };
            let (i, first) = batch.failed[0].clone();
            let names: Vec<String> = batch.failed[1..]
                .iter()
                .map(|(i, _)| self.routes[*i].to_string())
                .collect();
            let more = match names.is_empty() {
                true => String::new(),
                false => format!(" (and {})", join_human(&names)),
            };
            return Err(StepError::new(
                format!(
                    "delete route {}{more} via {}",
                    self.routes[i],
                    self.describe()
                ),
                first,
            )
            .with_undo(undo));
        }
        self.removed = true;
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if !self.removed {
            return Ok(());
        }
        kernel
            .route_replace(&self.ns, &self.name, &self.routes)
            .map_err(|b| {
                let (i, e) = b.failed[0].clone();
                StepError::new(format!("put back route {}", self.routes[i]), e)
            })?;
        self.removed = false;
        Ok(())
    }
}
