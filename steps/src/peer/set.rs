//! Configures every peer in one request (split into as many messages as needed by the kernel
//! seam). Endpoint host names are resolved in the socket namespace, where the UDP packets go.

use crate::kernel::{Endpoint, Kernel, Netns, PeerSettings, Resolve, Resolved, SecretSource};
use crate::secret::Key;
use crate::step::{counted, object, Needs, Step, StepError, StepKind};
use ipnet::IpNet;

/// A peer as planned: secrets not yet read, endpoint not yet resolved.
#[derive(Debug, Clone)]
pub struct PeerPlan {
    pub name: String,
    pub public_key: Key,
    pub preshared_key: Option<SecretSource>,
    pub endpoint: Option<Endpoint>,
    pub persistent_keepalive: Option<u16>,
    pub allowed_ips: Vec<IpNet>,
}

pub struct PeerSet {
    pub name: String,
    /// Where the link is (the interface namespace, else the socket namespace).
    pub ns: Netns,
    /// Where its UDP socket is: endpoints resolve here.
    pub socket_ns: Netns,
    pub peers: Vec<PeerPlan>,
    /// Prefixes the new peers take from existing ones (reload), as updates that give them
    /// back: the undo sends them before removing the new peers.
    pub give_back: Vec<crate::kernel::PeerUpdate>,
    applied: bool,
    /// Endpoints given by a host name, as resolved and set.
    set: Vec<(Key, std::net::SocketAddr)>,
}

impl PeerSet {
    pub fn new(name: String, ns: Netns, socket_ns: Netns, peers: Vec<PeerPlan>) -> PeerSet {
        PeerSet {
            name,
            ns,
            socket_ns,
            peers,
            give_back: Vec::new(),
            applied: false,
            set: Vec::new(),
        }
    }

    pub fn with_give_back(mut self, give_back: Vec<crate::kernel::PeerUpdate>) -> PeerSet {
        self.give_back = give_back;
        self
    }

    /// Gives taken prefixes back, then removes the new peers.
    fn undo(&self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if !self.give_back.is_empty() {
            kernel
                .wg_update_peers(&self.ns, &self.name, &self.give_back)
                .map_err(|e| {
                    StepError::new(
                        format!(
                            "give prefixes back to their owners on {}",
                            object(&self.name, &self.ns)
                        ),
                        e,
                    )
                })?;
        }
        kernel
            .wg_remove_peers(&self.ns, &self.name, &self.keys())
            .map_err(|e| StepError::new(format!("remove {}", self.describe()), e))
    }

    fn keys(&self) -> Vec<Key> {
        self.peers.iter().map(|p| p.public_key.clone()).collect()
    }

    fn settings(&self, kernel: &mut dyn Kernel) -> Result<Vec<PeerSettings>, StepError> {
        let mut psks = Vec::with_capacity(self.peers.len());
        for p in &self.peers {
            psks.push(match &p.preshared_key {
                Some(src) => Some(src.load(kernel).map_err(|e| {
                    StepError::new(
                        format!("read preshared key {} of peer {}", src.printable(), p.name),
                        e,
                    )
                })?),
                None => None,
            });
        }
        let endpoints = resolve_all(kernel, &self.socket_ns, &self.peers)?;
        Ok(self
            .peers
            .iter()
            .zip(psks)
            .zip(endpoints)
            .map(|((p, preshared_key), endpoint)| PeerSettings {
                public_key: p.public_key.clone(),
                preshared_key,
                endpoint,
                persistent_keepalive: p.persistent_keepalive,
                allowed_ips: p.allowed_ips.clone(),
            })
            .collect())
    }
}

/// Whether a peer's endpoint is a host name (resolved, and followed by `wg-exec refresh`).
pub fn by_name(p: &PeerPlan) -> bool {
    p.endpoint
        .as_ref()
        .is_some_and(|ep| ep.host.parse::<std::net::IpAddr>().is_err())
}

/// The endpoints of `peers` (those that have one), resolved at once in `socket_ns`: the first
/// address of each; None for a peer without one, or whose name did not resolve within the
/// bound (said in a warning: `wg-exec refresh` sets it later).
pub fn resolve_all(
    kernel: &mut dyn Kernel,
    socket_ns: &Netns,
    peers: &[PeerPlan],
) -> Result<Vec<Option<std::net::SocketAddr>>, StepError> {
    let wanted: Vec<(usize, Endpoint)> = peers
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.endpoint.clone().map(|e| (i, e)))
        .collect();
    let mut out = vec![None; peers.len()];
    if wanted.is_empty() {
        return Ok(out);
    }
    let eps: Vec<Endpoint> = wanted.iter().map(|(_, e)| e.clone()).collect();
    let answers = kernel.resolve_endpoints(socket_ns, &eps, Resolve::Configure);
    for ((i, ep), answer) in wanted.into_iter().zip(answers) {
        let p = &peers[i];
        match answer {
            Resolved::Addrs(addrs) => out[i] = addrs.first().copied(),
            Resolved::Later(why) => log::warn!(
                "peer {}: endpoint {ep} did not resolve in {socket_ns} ({why}); the peer keeps the endpoint it has (a new peer has none) until a later reload or `wg-exec refresh` resolves it",
                p.name
            ),
            Resolved::Failed(e) => {
                return Err(StepError::new(
                    format!("resolve endpoint {ep} of peer {} in {socket_ns}", p.name),
                    e,
                ))
            }
        }
    }
    Ok(out)
}

impl Step for PeerSet {
    fn kind(&self) -> StepKind {
        StepKind::PeerSet
    }

    /// The link's namespace, and the socket namespace when a host name must be resolved there.
    fn needs(&self) -> Needs {
        let resolves = self
            .peers
            .iter()
            .filter_map(|p| p.endpoint.as_ref())
            .any(|ep| ep.host.parse::<std::net::IpAddr>().is_err());
        Needs::namespaces(std::iter::once(&self.ns).chain(resolves.then_some(&self.socket_ns)))
    }

    fn describe(&self) -> String {
        format!(
            "{} of {}",
            counted(self.peers.len(), "peer"),
            object(&self.name, &self.ns)
        )
    }

    fn print(&self) -> Vec<String> {
        self.peers
            .iter()
            .map(|p| {
                let mut line = format!(
                    "{}wg set {} peer {}",
                    self.ns.exec_prefix(),
                    self.name,
                    p.public_key
                );
                if let Some(psk) = &p.preshared_key {
                    line.push_str(&format!(" preshared-key {}", psk.printable()));
                }
                if let Some(ep) = &p.endpoint {
                    line.push_str(&format!(" endpoint {ep}"));
                }
                if let Some(k) = p.persistent_keepalive {
                    line.push_str(&format!(" persistent-keepalive {k}"));
                }
                if !p.allowed_ips.is_empty() {
                    let ips: Vec<String> = p.allowed_ips.iter().map(|a| a.to_string()).collect();
                    line.push_str(&format!(" allowed-ips {}", ips.join(",")));
                }
                line
            })
            .collect()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if self.peers.is_empty() {
            return Ok(());
        }
        let settings = self.settings(kernel)?;
        if let Err(e) = kernel.wg_set_peers(&self.ns, &self.name, &settings) {
            let err = StepError::new(format!("configure {}", self.describe()), e);
            // Some messages may have gone through before the failing one.
            let undo = match self.undo(kernel) {
                Ok(()) => vec![],
                Err(e) => vec![e],
            };
            return Err(err.with_undo(undo));
        }
        self.applied = true;
        self.set = self
            .peers
            .iter()
            .zip(&settings)
            .filter(|(p, _)| by_name(p))
            .filter_map(|(p, s)| s.endpoint.map(|e| (p.public_key.clone(), e)))
            .collect();
        log::info!("configured {}", self.describe());
        Ok(())
    }

    fn endpoints_set(&self) -> Vec<(Key, std::net::SocketAddr)> {
        match self.applied {
            true => self.set.clone(),
            false => Vec::new(),
        }
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if self.applied {
            self.undo(kernel)?;
            self.applied = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeKernel, FakeLink};

    fn plan(byte: u8, host: &str) -> PeerPlan {
        PeerPlan {
            name: format!("p{byte}"),
            public_key: Key::from_bytes([byte; 32], false),
            preshared_key: None,
            endpoint: Some(Endpoint {
                host: host.into(),
                port: 51820,
            }),
            persistent_keepalive: None,
            allowed_ips: Vec::new(),
        }
    }

    #[test]
    fn the_endpoints_set_from_names_are_told_after_apply() {
        let mut k = FakeKernel::new();
        k.state
            .links
            .insert((Netns::Current, "wg0".into()), FakeLink::default());
        k.hosts
            .insert("b.example".into(), "203.0.113.2".parse().unwrap());
        k.later_hosts.insert("c.example".into());
        let mut s = PeerSet::new(
            "wg0".into(),
            Netns::Current,
            Netns::Current,
            vec![
                plan(1, "b.example"),
                plan(2, "203.0.113.7"),
                plan(3, "c.example"),
            ],
        );
        assert!(s.endpoints_set().is_empty());
        s.apply(&mut k).unwrap();
        // By name and resolved: B. An address is no name; C did not resolve.
        assert_eq!(
            s.endpoints_set(),
            vec![(
                Key::from_bytes([1; 32], false),
                "203.0.113.2:51820".parse().unwrap()
            )]
        );
        s.rollback(&mut k).unwrap();
        assert!(s.endpoints_set().is_empty());
    }
}
