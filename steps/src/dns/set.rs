//! Up: the link's DNS servers and domains, through the backend available when it runs.

use super::revert;
use crate::kernel::{DnsSettings, Kernel, KernelError, Netns};
use crate::step::{object, Needs, Step, StepError, StepKind, Trace};
use crate::DnsBackend;

/// Sets the link's DNS settings (up). The backend is chosen when it runs: resolved if its bus
/// name has an owner, else resolvconf (the configuration check refused a `dns` with neither).
pub struct Dns {
    pub name: String,
    /// The host's namespace, where the link is (named namespaces are refused for `dns`).
    pub ns: Netns,
    pub settings: DnsSettings,
    /// The backend that applied them, once applied.
    pub backend: Option<DnsBackend>,
}

impl Dns {
    pub fn new(name: String, ns: Netns, settings: DnsSettings) -> Dns {
        Dns {
            name,
            ns,
            settings,
            backend: None,
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl Step for Dns {
    fn kind(&self) -> StepKind {
        StepKind::Dns
    }

    /// The backends serve the namespace wg-exec runs in; the link's index is read there.
    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
    }

    fn describe(&self) -> String {
        object(&self.name, &self.ns)
    }

    /// resolvectl's equivalents (domains first, as resolved advises), and resolvconf's line for
    /// hosts without resolved.
    fn print(&self) -> Vec<String> {
        let s = &self.settings;
        let domains: Vec<String> = s
            .domains()
            .into_iter()
            .map(|(d, routing)| match routing {
                true => format!("~{d}"),
                false => d,
            })
            .collect();
        let servers: Vec<String> = s.servers.iter().map(|a| a.to_string()).collect();
        let mut lines = Vec::new();
        if !domains.is_empty() {
            lines.push(format!(
                "resolvectl domain {} {}",
                self.name,
                domains.join(" ")
            ));
        }
        lines.push(format!(
            "resolvectl dns {} {}",
            self.name,
            servers.join(" ")
        ));
        lines.push(format!(
            "resolvectl default-route {} {}",
            self.name,
            yes_no(s.default_route)
        ));
        lines.push(format!(
            "# without systemd-resolved: printf '{}' | resolvconf {}",
            s.resolv_conf().replace('\n', "\\n"),
            s.resolvconf_args(&self.name).join(" ")
        ));
        lines
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let backend = kernel.dns_available().ok_or_else(|| {
            StepError::new(
                format!("set DNS of {}", self.describe()),
                KernelError::new(
                    "neither systemd-resolved (org.freedesktop.resolve1 on the system bus) nor a resolvconf program is available",
                ),
            )
        })?;
        kernel
            .dns_set(backend, &self.ns, &self.name, &self.settings)
            .map_err(|e| {
                StepError::new(
                    format!("set DNS of {} through {backend}", self.describe()),
                    e,
                )
            })?;
        log::info!(
            "{}: DNS servers {} set through {backend}",
            self.name,
            self.settings
                .servers
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.backend = Some(backend);
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let Some(backend) = self.backend else {
            return Ok(());
        };
        revert(kernel, backend, &self.ns, &self.name)
    }

    fn trace(&self) -> Trace {
        Trace::Dns {
            name: self.name.clone(),
            ns: self.ns.clone(),
        }
    }
}
