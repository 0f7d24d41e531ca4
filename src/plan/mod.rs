//! Plans are the order of things, as pure functions of their inputs: up (from the
//! configuration), down (from the configuration, or from the journal of the up) and reload (from
//! the configuration, the record of what was applied and the live interface). Each position
//! says why it stands there. What a plan needs from the process comes from its steps
//! ([`needs`]). Nothing here reads the machine except through the [`Kernel`] a reload is given.
//!
//! [`Kernel`]: wg_exec_steps::Kernel

pub mod down;
pub mod reload;
pub mod up;

pub use down::{down_from_config, down_from_journal, DownSource};
pub use up::up;

use wg_exec_steps::step::Needs;
use wg_exec_steps::PeerPlan;
use wg_exec_steps::Step;
use wg_exec_steps::{Hook, Phase};

pub type Plan = Vec<Box<dyn Step>>;

pub(crate) fn hook(device: &str, phase: Phase, lines: &[String]) -> Option<Box<dyn Step>> {
    (!lines.is_empty()).then(|| {
        Box::new(Hook {
            phase,
            device: device.to_string(),
            lines: lines.to_vec(),
        }) as Box<dyn Step>
    })
}

/// Everything a plan's steps need from the process.
pub fn needs(plan: &[Box<dyn Step>]) -> Needs {
    let mut all = Needs::default();
    for step in plan {
        all.add(step.needs());
    }
    all
}

/// A configured peer as a step takes it: secrets still to be read, endpoint to be resolved.
pub fn peer_plan(p: &crate::config::Peer) -> PeerPlan {
    PeerPlan {
        name: p.name.clone(),
        public_key: p.public_key.clone(),
        preshared_key: p.preshared_key.clone(),
        endpoint: p.endpoint.clone(),
        persistent_keepalive: p.persistent_keepalive,
        allowed_ips: p.allowed_ips.clone(),
    }
}
