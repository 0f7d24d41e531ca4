//! The real kernel's DNS settings (systemd-resolved over D-Bus, or resolvconf).

use crate::linux::{dns, LinuxKernel};
use wg_exec_steps::kernel::Dns;
use wg_exec_steps::{DnsBackend, DnsSettings, KernelError, Netns};

impl Dns for LinuxKernel {
    fn dns_available(&mut self) -> Option<DnsBackend> {
        dns::available()
    }

    fn dns_set(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
        settings: &DnsSettings,
    ) -> Result<(), KernelError> {
        match backend {
            DnsBackend::Resolved => {
                let index = self.index(ns, name)?;
                dns::resolved_set(index, settings)
            }
            DnsBackend::Resolvconf => dns::resolvconf_set(name, settings),
        }
    }

    fn dns_matches(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
        settings: &DnsSettings,
    ) -> Result<Option<bool>, KernelError> {
        match backend {
            DnsBackend::Resolved => {
                let index = self.index(ns, name)?;
                dns::resolved_matches(index, settings).map(Some)
            }
            DnsBackend::Resolvconf => Ok(None),
        }
    }

    fn dns_revert(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
    ) -> Result<(), KernelError> {
        match backend {
            // A link that is gone took its settings in resolved with it.
            DnsBackend::Resolved => match self.index(ns, name) {
                Err(e) if e.is_errno(libc::ENODEV) => Ok(()),
                Err(e) => Err(e),
                Ok(index) => dns::resolved_revert(index),
            },
            DnsBackend::Resolvconf => dns::resolvconf_revert(name),
        }
    }
}
