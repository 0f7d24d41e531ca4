//! Reload: peers that stay but changed, updated in place with only what changed (UPDATE_ONLY:
//! a peer removed meanwhile is not brought back). An unchanged endpoint is never sent, so a
//! roamed endpoint stays; allowed IPs are appended when only added, replaced when some go.
//! The undo sends every changed attribute back as it was.

use super::set::{by_name, resolve_all, PeerPlan};
use crate::kernel::{
    AllowedIpsChange, Kernel, KernelError, LivePeer, Netns, PeerSettings, PeerUpdate,
};
use crate::step::{counted, object, Needs, Step, StepError, StepKind};
use crate::Key;

/// One peer's change: the peer as configured, as it was, and what differs.
#[derive(Debug, Clone)]
pub struct PlannedUpdate {
    pub desired: PeerPlan,
    pub old: LivePeer,
    pub preshared_key: bool,
    pub endpoint: bool,
    pub persistent_keepalive: bool,
    pub allowed_ips: AllowedIpsChange,
}

pub struct PeerUpdates {
    pub name: String,
    pub ns: Netns,
    pub socket_ns: Netns,
    pub updates: Vec<PlannedUpdate>,
    /// "changed" (before removals) or "losing" (after new peers and gainers).
    pub label: &'static str,
    /// Prefixes these peers take from others (the kernel moves a claimed prefix), as updates
    /// that give them back to their owners: the undo sends them first.
    pub give_back: Vec<PeerUpdate>,
    applied: bool,
    /// Peers whose changed endpoint did not resolve (they keep the one they have).
    pending: Vec<Key>,
    /// Changed endpoints given by a host name, as resolved and sent.
    set: Vec<(Key, std::net::SocketAddr)>,
}

impl PeerUpdates {
    pub fn new(
        name: String,
        ns: Netns,
        socket_ns: Netns,
        updates: Vec<PlannedUpdate>,
        label: &'static str,
    ) -> PeerUpdates {
        PeerUpdates {
            name,
            ns,
            socket_ns,
            updates,
            label,
            give_back: Vec::new(),
            applied: false,
            pending: Vec::new(),
            set: Vec::new(),
        }
    }

    pub fn with_give_back(mut self, give_back: Vec<PeerUpdate>) -> PeerUpdates {
        self.give_back = give_back;
        self
    }

    fn forward(&self, kernel: &mut dyn Kernel) -> Result<Vec<PeerUpdate>, StepError> {
        // The changed endpoints, resolved at once.
        let changed: Vec<PeerPlan> = self
            .updates
            .iter()
            .map(|u| PeerPlan {
                endpoint: u.desired.endpoint.clone().filter(|_| u.endpoint),
                ..u.desired.clone()
            })
            .collect();
        let resolved = resolve_all(kernel, &self.socket_ns, &changed)?;
        let mut out = Vec::with_capacity(self.updates.len());
        for (u, resolved) in self.updates.iter().zip(resolved) {
            let p = &u.desired;
            let preshared_key = match (&p.preshared_key, u.preshared_key) {
                (Some(src), true) => Some(src.load(kernel).map_err(|e| {
                    StepError::new(
                        format!("read preshared key {} of peer {}", src.printable(), p.name),
                        e,
                    )
                })?),
                (None, true) => None,
                (_, false) => u.old.preshared_key.clone(),
            };
            let endpoint = resolved.or(u.old.endpoint);
            out.push(PeerUpdate {
                peer: PeerSettings {
                    public_key: p.public_key.clone(),
                    preshared_key,
                    endpoint,
                    persistent_keepalive: p.persistent_keepalive,
                    allowed_ips: p.allowed_ips.clone(),
                },
                preshared_key: u.preshared_key,
                endpoint: u.endpoint && resolved.is_some(),
                persistent_keepalive: u.persistent_keepalive,
                allowed_ips: u.allowed_ips.clone(),
            });
        }
        Ok(out)
    }

    /// Whether undoing `u` means removing the peer and adding it back as it was: it gained an
    /// endpoint where it had none, and WireGuard cannot clear an endpoint.
    fn recreated(u: &PlannedUpdate) -> bool {
        u.endpoint && u.old.endpoint.is_none()
    }

    /// Puts every peer back as it was: taken prefixes to their owners, changed attributes back,
    /// and peers that gained an endpoint removed and added again without one.
    fn restore(&self, kernel: &mut dyn Kernel) -> Result<(), KernelError> {
        kernel.wg_update_peers(&self.ns, &self.name, &self.backward())?;
        let again: Vec<PeerSettings> = self
            .updates
            .iter()
            .filter(|u| Self::recreated(u))
            .map(|u| PeerSettings {
                public_key: u.old.public_key.clone(),
                preshared_key: u.old.preshared_key.clone(),
                endpoint: None,
                persistent_keepalive: (u.old.persistent_keepalive > 0)
                    .then_some(u.old.persistent_keepalive),
                allowed_ips: u.old.allowed_ips.clone(),
            })
            .collect();
        if again.is_empty() {
            return Ok(());
        }
        let keys: Vec<Key> = again.iter().map(|p| p.public_key.clone()).collect();
        kernel.wg_remove_peers(&self.ns, &self.name, &keys)?;
        kernel.wg_set_peers(&self.ns, &self.name, &again)
    }

    /// Every changed attribute as it was; first, taken prefixes back to their owners. Peers that
    /// [`Self::recreated`] are left to [`Self::restore`].
    fn backward(&self) -> Vec<PeerUpdate> {
        self.give_back
            .iter()
            .cloned()
            .chain(
                self.updates
                    .iter()
                    .filter(|u| !Self::recreated(u))
                    .map(|u| PeerUpdate {
                        peer: PeerSettings {
                            public_key: u.old.public_key.clone(),
                            preshared_key: u.old.preshared_key.clone(),
                            endpoint: u.old.endpoint,
                            persistent_keepalive: (u.old.persistent_keepalive > 0)
                                .then_some(u.old.persistent_keepalive),
                            allowed_ips: u.old.allowed_ips.clone(),
                        },
                        preshared_key: u.preshared_key,
                        endpoint: u.endpoint && u.old.endpoint.is_some(),
                        persistent_keepalive: u.persistent_keepalive,
                        allowed_ips: match u.allowed_ips {
                            AllowedIpsChange::Unchanged => AllowedIpsChange::Unchanged,
                            _ => AllowedIpsChange::Replace,
                        },
                    }),
            )
            .collect()
    }
}

impl Step for PeerUpdates {
    fn kind(&self) -> StepKind {
        StepKind::PeerUpdate
    }

    fn needs(&self) -> Needs {
        let resolves = self.updates.iter().any(|u| {
            u.endpoint
                && u.desired
                    .endpoint
                    .as_ref()
                    .is_some_and(|ep| ep.host.parse::<std::net::IpAddr>().is_err())
        });
        Needs::namespaces(std::iter::once(&self.ns).chain(resolves.then_some(&self.socket_ns)))
    }

    fn describe(&self) -> String {
        let noun = format!("{} peer", self.label);
        format!(
            "{} of {}",
            counted(self.updates.len(), &noun),
            object(&self.name, &self.ns)
        )
    }

    fn print(&self) -> Vec<String> {
        self.updates
            .iter()
            .map(|u| {
                let p = &u.desired;
                let mut line = format!(
                    "{}wg set {} peer {}",
                    self.ns.exec_prefix(),
                    self.name,
                    p.public_key
                );
                if u.preshared_key {
                    let file = p.preshared_key.as_ref().map(|s| s.printable());
                    line.push_str(&format!(
                        " preshared-key {}",
                        file.unwrap_or_else(|| "/dev/null".into())
                    ));
                }
                if let (true, Some(ep)) = (u.endpoint, &p.endpoint) {
                    line.push_str(&format!(" endpoint {ep}"));
                }
                if u.persistent_keepalive {
                    line.push_str(&format!(
                        " persistent-keepalive {}",
                        p.persistent_keepalive.unwrap_or(0)
                    ));
                }
                match &u.allowed_ips {
                    AllowedIpsChange::Unchanged => {}
                    AllowedIpsChange::Append(new) => {
                        let ips: Vec<String> = new.iter().map(|a| format!("+{a}")).collect();
                        line.push_str(&format!(" allowed-ips {}", ips.join(",")));
                    }
                    AllowedIpsChange::Replace => {
                        let ips: Vec<String> =
                            p.allowed_ips.iter().map(|a| a.to_string()).collect();
                        line.push_str(&format!(" allowed-ips {}", ips.join(",")));
                    }
                }
                line
            })
            .collect()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        let forward = self.forward(kernel)?;
        self.pending = self
            .updates
            .iter()
            .zip(&forward)
            .filter(|(u, f)| u.endpoint && !f.endpoint)
            .map(|(u, _)| u.desired.public_key.clone())
            .collect();
        self.set = self
            .updates
            .iter()
            .zip(&forward)
            .filter(|(u, f)| f.endpoint && by_name(&u.desired))
            .filter_map(|(u, f)| f.peer.endpoint.map(|e| (u.desired.public_key.clone(), e)))
            .collect();
        if let Err(e) = kernel.wg_update_peers(&self.ns, &self.name, &forward) {
            let err = StepError::new(format!("update {}", self.describe()), e);
            // Messages before the failing one went through: put every peer back.
            let undo = match self.restore(kernel) {
                Ok(()) => vec![],
                Err(e) => vec![StepError::new(format!("restore {}", self.describe()), e)],
            };
            return Err(err.with_undo(undo));
        }
        self.applied = true;
        log::info!("updated {}", self.describe());
        Ok(())
    }

    fn endpoints_pending(&self) -> Vec<Key> {
        self.pending.clone()
    }

    fn endpoints_set(&self) -> Vec<(Key, std::net::SocketAddr)> {
        match self.applied {
            true => self.set.clone(),
            false => Vec::new(),
        }
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if self.applied {
            self.restore(kernel)
                .map_err(|e| StepError::new(format!("restore {}", self.describe()), e))?;
            self.applied = false;
        }
        Ok(())
    }
}
