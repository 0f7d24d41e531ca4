//! The down plans: from the configuration when there is no journal, else from the journal of
//! the up (also the recovery of an unfinished up). Short, because deleting the link takes its
//! addresses, peers and routes with it.

use super::{hook, Plan};
use crate::config::derived::{interface_ns, socket_ns};
use crate::config::Config;
use crate::journal::{Journal, What};
use wg_exec_steps::policy::{FindAndRemovePolicy, RemovePolicy};
use wg_exec_steps::DnsRevert;
use wg_exec_steps::Phase;
use wg_exec_steps::RemoveKeyFile;
use wg_exec_steps::Teardown;
use wg_exec_steps::{DnsBackend, Netns, Step};

/// Reverting the DNS settings of link `name` (down), through `backend` when known.
fn dns_revert(name: &str, ns: Netns, backend: Option<DnsBackend>) -> Box<dyn Step> {
    Box::new(DnsRevert {
        name: name.to_string(),
        ns,
        backend,
    })
}

/// Down when there is no journal: the configuration says where the link is. `foreign_netns`:
/// wg-exec runs in a network namespace other than the host's (the command asks preflight).
pub fn down_from_config(cfg: &Config, foreign_netns: bool) -> Plan {
    let sock = socket_ns(cfg);
    let iface = interface_ns(cfg);
    let mut plan: Plan = Vec::new();
    // 1. pre_shutdown sees the interface still up.
    plan.extend(hook(&cfg.name, Phase::PreShutdown, &cfg.pre_shutdown));
    // 1b. A full tunnel's rules and firewall tables, found by their fixed shape (without a
    //     journal nothing says what up made).
    if cfg.full_tunnel() {
        plan.push(Box::new(FindAndRemovePolicy {
            name: cfg.name.clone(),
            ns: iface.clone(),
        }));
    }
    // 1b. DNS settings reverted while the link still exists (resolved knows it by index; a
    //     resolvconf entry would outlive it).
    //     Not from a namespace other than the host's, where up refuses `dns`: the revert would
    //     name another link of the host's.
    if !cfg.dns.is_empty() && !foreign_netns {
        plan.push(dns_revert(&cfg.name, iface.clone(), None));
    }
    // 2. Delete the link (its addresses, peers and `dev` routes go with it); look in the socket
    //    namespace too, where an interrupted up may have left it.
    plan.push(Box::new(Teardown {
        name: cfg.name.clone(),
        ns: iface.clone(),
        created_in: (iface != sock).then_some(sock),
    }));
    // 3. post_shutdown once it is gone.
    plan.extend(hook(&cfg.name, Phase::PostShutdown, &cfg.post_shutdown));
    plan
}

/// Down (`hooks`: with the shutdown hooks recorded at up) or recovery of an unfinished up
/// (without hooks), from the journal alone: delete the link where the journal last put it (and
/// where it was created, in case the move did not happen), and, for an up that never completed,
/// remove the key files it generated.
pub fn down_from_journal(journal: &Journal, hooks: bool) -> Plan {
    let mut plan: Plan = Vec::new();
    let device = &journal.interface;
    if hooks {
        plan.extend(hook(device, Phase::PreShutdown, &journal.pre_shutdown));
    }
    // A full tunnel's rules, routes, firewall and sysctl, newest first, before the link: they
    // outlive it.
    for (ns, objects) in journal.policy().into_iter().rev() {
        if !objects.is_empty() {
            plan.push(Box::new(RemovePolicy { ns, objects }));
        }
    }
    // DNS settings first, while the link still exists (a resolvconf entry outlives it).
    for (name, netns, backend) in journal.dns() {
        plan.push(dns_revert(&name, netns, backend));
    }
    for (name, created, now) in journal.links() {
        plan.push(Box::new(Teardown {
            name,
            created_in: (created != now).then_some(created),
            ns: now,
        }));
    }
    if journal.state.undo_removes_generated_keys() {
        for r in journal.live().rev() {
            if let What::KeyFile {
                path,
                existed: false,
            } = &r.what
            {
                plan.push(Box::new(RemoveKeyFile { path: path.clone() }));
            }
        }
    }
    if hooks {
        plan.extend(hook(device, Phase::PostShutdown, &journal.post_shutdown));
    }
    plan
}

/// What `down` follows: the journal of the up when there is a usable one, else the
/// configuration. The real run and `--print` both choose through this.
pub enum DownSource {
    Journal(Journal),
    /// No journal, or an unusable one (the reason is kept for the message).
    Config(Box<Config>, Option<crate::journal::Unusable>),
}

impl DownSource {
    /// The plan; `foreign_netns` as [`down_from_config`] takes it.
    pub fn plan(&self, foreign_netns: bool) -> Plan {
        match self {
            DownSource::Journal(j) => down_from_journal(j, true),
            DownSource::Config(cfg, _) => down_from_config(cfg, foreign_netns),
        }
    }
}
