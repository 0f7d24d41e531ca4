//! The link's DNS servers and domains (the configuration's `dns`, wg-quick's `DNS =`): through
//! systemd-resolved when it runs, else resolvconf. Up sets them once the link is up and its
//! peers are set (their endpoint names resolved through the machine's DNS), before the routes
//! carry traffic; rollback and down revert the link. What is asked of
//! resolved follows its guidance for VPNs (systemd docs/RESOLVED-VPNS.md): domains before
//! servers, `~.` and default-route for a full tunnel so that no query leaks around it.

mod revert;
mod set;

pub use revert::DnsRevert;
pub use set::Dns;

use crate::kernel::{DnsBackend, DnsSettings, Kernel, Netns};
use crate::step::{object, StepError};
use std::net::IpAddr;

impl DnsSettings {
    /// What the link gets, from the configuration's servers, search domains and routing
    /// domains (`~name`, without the `~`). The link takes every query (the routing domain `~.`,
    /// default-route on) for a full tunnel, when no domain is given (the servers are then for
    /// everything, as wg-quick's `DNS = server` makes them), and when `~.` is written; else only
    /// names under its domains (split DNS, default-route off).
    pub fn for_link(
        servers: &[IpAddr],
        search: &[String],
        routing: &[String],
        full_tunnel: bool,
    ) -> DnsSettings {
        let mut routing = routing.to_vec();
        let every = full_tunnel
            || (search.is_empty() && routing.is_empty())
            || routing.iter().any(|d| is_root(d));
        if every && !routing.iter().any(|d| is_root(d)) {
            routing.insert(0, ".".into());
        }
        DnsSettings {
            servers: servers.to_vec(),
            search: search.to_vec(),
            routing,
            default_route: every,
        }
    }

    /// Whether the link takes every query (`~.`): resolvconf's `-x` (exclusive) says the same.
    pub fn every_query(&self) -> bool {
        self.routing.iter().any(|d| is_root(d))
    }

    /// resolvconf's arguments for link `name`.
    pub fn resolvconf_args(&self, name: &str) -> Vec<String> {
        let mut args: Vec<String> = ["-a", name, "-m", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if self.every_query() {
            args.push("-x".into());
        }
        args
    }

    /// Domains as resolved takes them: (name, routing only), routing domains first.
    pub fn domains(&self) -> Vec<(String, bool)> {
        self.routing
            .iter()
            .map(|d| (d.clone(), true))
            .chain(self.search.iter().map(|d| (d.clone(), false)))
            .collect()
    }

    /// What resolvconf reads on stdin: `nameserver` lines and one `search` line (resolvconf
    /// has no routing domains; `-x` makes the link exclusive instead).
    pub fn resolv_conf(&self) -> String {
        let mut text: String = self
            .servers
            .iter()
            .map(|s| format!("nameserver {s}\n"))
            .collect();
        if !self.search.is_empty() {
            text.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        text
    }
}

fn is_root(domain: &str) -> bool {
    domain == "."
}

/// Reverts the link's DNS settings through `backend` (rollback of up, and down).
fn revert(
    kernel: &mut dyn Kernel,
    backend: DnsBackend,
    ns: &Netns,
    name: &str,
) -> Result<(), StepError> {
    kernel.dns_revert(backend, ns, name).map_err(|e| {
        StepError::new(
            format!("revert DNS of {} through {backend}", object(name, ns)),
            e,
        )
    })?;
    log::info!("{name}: DNS settings reverted through {backend}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{einval, FakeKernel};
    use crate::step::Step;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_full_tunnel_takes_every_query_and_a_split_one_only_its_domains() {
        let servers = [ip("192.0.2.53"), ip("2001:db8::53")];
        let search = strings(&["corp.example"]);
        let full = DnsSettings::for_link(&servers, &search, &[], true);
        assert_eq!(full.routing, strings(&["."]));
        assert!(full.default_route);
        assert_eq!(
            full.domains(),
            vec![(".".into(), true), ("corp.example".into(), false)]
        );
        // `~.` written by hand is not added twice.
        let again = DnsSettings::for_link(&servers, &search, &strings(&["."]), true);
        assert_eq!(again.routing, strings(&["."]));
        // Not a full tunnel: domains given, so the servers answer only for them.
        let split = DnsSettings::for_link(&servers, &search, &strings(&["lab.example"]), false);
        assert_eq!(split.routing, strings(&["lab.example"]));
        assert!(!split.default_route);
        assert!(!split.every_query());
        assert_eq!(split.resolvconf_args("wg0"), ["-a", "wg0", "-m", "0"]);
        // Servers only: they are asked for everything, like wg-quick's DNS = server.
        let plain = DnsSettings::for_link(&servers, &[], &[], false);
        assert!(plain.default_route);
        assert_eq!(plain.routing, strings(&["."]));
        assert_eq!(plain.resolvconf_args("wg0"), ["-a", "wg0", "-m", "0", "-x"]);
        // `~.` written in a split tunnel: every query too.
        let tilde = DnsSettings::for_link(&servers, &search, &strings(&["."]), false);
        assert!(tilde.default_route && tilde.every_query());
        assert_eq!(
            full.resolv_conf(),
            "nameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch corp.example\n"
        );
    }

    fn step() -> Dns {
        Dns::new(
            "wg0".into(),
            Netns::Current,
            DnsSettings::for_link(&[ip("192.0.2.53")], &strings(&["corp.example"]), &[], true),
        )
    }

    #[test]
    fn print_shows_resolvectl_domains_first_and_the_resolvconf_line() {
        assert_eq!(
            step().print(),
            vec![
                "resolvectl domain wg0 ~. corp.example",
                "resolvectl dns wg0 192.0.2.53",
                "resolvectl default-route wg0 yes",
                "# without systemd-resolved: printf 'nameserver 192.0.2.53\\nsearch corp.example\\n' | resolvconf -a wg0 -m 0 -x",
            ]
        );
    }

    #[test]
    fn apply_sets_through_the_available_backend_and_rollback_reverts_it() {
        for backend in [DnsBackend::Resolved, DnsBackend::Resolvconf] {
            let mut k = FakeKernel::new();
            k.dns_backend = Some(backend);
            k.state.links.insert(
                (Netns::Current, "wg0".into()),
                crate::fake::FakeLink::default(),
            );
            let mut s = step();
            s.apply(&mut k).unwrap();
            assert_eq!(s.backend, Some(backend));
            assert_eq!(k.state.dns.get("wg0"), Some(&(backend, s.settings.clone())));
            s.rollback(&mut k).unwrap();
            assert!(k.state.dns.is_empty());
        }
    }

    #[test]
    fn with_no_backend_the_step_fails_and_changes_nothing() {
        let mut k = FakeKernel::new();
        k.dns_backend = None;
        let err = step().apply(&mut k).unwrap_err();
        assert_eq!(
            err.to_string(),
            "set DNS of wg0: neither systemd-resolved (org.freedesktop.resolve1 on the system bus) nor a resolvconf program is available"
        );
        assert!(k.state.dns.is_empty());
    }

    #[test]
    fn a_failed_set_names_the_backend_and_leaves_nothing() {
        let mut k = FakeKernel::new();
        k.fail_call(2, einval()); // dns_available, then dns_set
        let mut s = step();
        let err = s.apply(&mut k).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("set DNS of wg0 through systemd-resolved: "));
        assert!(k.state.dns.is_empty());
        assert_eq!(s.backend, None);
    }

    #[test]
    fn revert_uses_the_recorded_backend_and_is_idempotent() {
        let mut k = FakeKernel::new();
        k.dns_backend = Some(DnsBackend::Resolvconf);
        k.state.dns.insert(
            "wg0".into(),
            (DnsBackend::Resolvconf, DnsSettings::default()),
        );
        let mut r = DnsRevert {
            name: "wg0".into(),
            ns: Netns::Current,
            backend: Some(DnsBackend::Resolvconf),
        };
        r.apply(&mut k).unwrap();
        r.apply(&mut k).unwrap();
        assert!(k.state.dns.is_empty());
        assert_eq!(r.print(), vec!["resolvconf -d wg0 -f"]);
        // Nothing available: nothing to revert, and no error.
        k.dns_backend = None;
        let mut r = DnsRevert { backend: None, ..r };
        r.apply(&mut k).unwrap();
    }
}
