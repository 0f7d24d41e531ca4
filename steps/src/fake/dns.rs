//! [`crate::kernel::Dns`] on the fake kernel: in memory, every call recorded and failable.

use super::{label, FakeKernel};
use crate::kernel::Dns;
use crate::kernel::{DnsBackend, DnsSettings, KernelError, Netns};

impl Dns for FakeKernel {
    fn dns_available(&mut self) -> Option<DnsBackend> {
        self.call("dns_available".into()).ok()?;
        self.dns_backend
    }

    fn dns_set(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
        settings: &DnsSettings,
    ) -> Result<(), KernelError> {
        self.call(format!("dns_set {backend} {} {name}", label(ns)))?;
        if backend == DnsBackend::Resolved {
            // resolved knows links by index: the link must exist.
            self.link(ns, name)?;
        }
        self.state
            .dns
            .insert(name.to_string(), (backend, settings.clone()));
        Ok(())
    }

    fn dns_matches(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
        settings: &DnsSettings,
    ) -> Result<Option<bool>, KernelError> {
        self.call(format!("dns_matches {backend} {} {name}", label(ns)))?;
        if backend == DnsBackend::Resolvconf {
            return Ok(None);
        }
        Ok(Some(
            self.state.dns.get(name) == Some(&(backend, settings.clone())),
        ))
    }

    fn dns_revert(
        &mut self,
        backend: DnsBackend,
        ns: &Netns,
        name: &str,
    ) -> Result<(), KernelError> {
        self.call(format!("dns_revert {backend} {} {name}", label(ns)))?;
        self.state.dns.remove(name);
        Ok(())
    }
}
