//! Reload: peers the configuration no longer has, removed after new peers and gainers are in
//! place. The undo adds each back as it was (its session, though, is gone).

use crate::kernel::{Kernel, LivePeer, Netns, PeerSettings};
use crate::secret::Key;
use crate::step::{counted, object, Needs, Step, StepError, StepKind};

pub struct PeerRemove {
    pub name: String,
    pub ns: Netns,
    pub peers: Vec<LivePeer>,
    removed: bool,
}

impl PeerRemove {
    pub fn new(name: String, ns: Netns, peers: Vec<LivePeer>) -> PeerRemove {
        PeerRemove {
            name,
            ns,
            peers,
            removed: false,
        }
    }

    fn keys(&self) -> Vec<Key> {
        self.peers.iter().map(|p| p.public_key.clone()).collect()
    }

    fn as_they_were(&self) -> Vec<PeerSettings> {
        self.peers
            .iter()
            .map(|p| PeerSettings {
                public_key: p.public_key.clone(),
                preshared_key: p.preshared_key.clone(),
                endpoint: p.endpoint,
                persistent_keepalive: (p.persistent_keepalive > 0)
                    .then_some(p.persistent_keepalive),
                allowed_ips: p.allowed_ips.clone(),
            })
            .collect()
    }
}

impl Step for PeerRemove {
    fn kind(&self) -> StepKind {
        StepKind::PeerRemove
    }

    fn needs(&self) -> Needs {
        Needs::namespaces([&self.ns])
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
                format!(
                    "{}wg set {} peer {} remove",
                    self.ns.exec_prefix(),
                    self.name,
                    p.public_key
                )
            })
            .collect()
    }

    fn apply(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if let Err(e) = kernel.wg_remove_peers(&self.ns, &self.name, &self.keys()) {
            let err = StepError::new(format!("remove {}", self.describe()), e);
            // Some may be gone already: add them all back (present ones are only updated).
            let undo = match kernel.wg_set_peers(&self.ns, &self.name, &self.as_they_were()) {
                Ok(()) => vec![],
                Err(e) => vec![StepError::new(format!("add back {}", self.describe()), e)],
            };
            return Err(err.with_undo(undo));
        }
        self.removed = true;
        log::info!("removed {}", self.describe());
        Ok(())
    }

    fn rollback(&mut self, kernel: &mut dyn Kernel) -> Result<(), StepError> {
        if self.removed {
            kernel
                .wg_set_peers(&self.ns, &self.name, &self.as_they_were())
                .map_err(|e| StepError::new(format!("add back {}", self.describe()), e))?;
            self.removed = false;
        }
        Ok(())
    }
}
