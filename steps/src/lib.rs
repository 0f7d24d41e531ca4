//! The steps of wg-exec: the [`Step`] trait, the [`Kernel`] seam every privileged action goes
//! through, and one file per step. Nothing here parses configuration or knows about processes;
//! the `wg-exec` binary builds plans out of these steps and runs them transactionally.

pub mod fake;
pub mod kernel;
pub mod secret;
pub mod step;

pub mod addresses;
pub mod addresses_remove;
pub mod device_set;
pub mod dns;
pub mod gen_key;
pub mod hook;
pub mod key;
pub mod key_rotate;
pub mod link_add;
pub mod link_up;
pub mod modprobe;
pub mod mtu;
pub mod netns_move;
pub mod peer_remove;
pub mod peer_set;
pub mod peer_update;
pub mod policy;
pub mod route;
pub mod routes_remove;
pub mod teardown;

pub use kernel::{
    AllowedIpsChange, Backend, BatchError, DeviceSettings, Endpoint, Kernel, KernelError,
    LinkState, LiveDevice, LivePeer, Netns, NftTable, PeerSettings, PeerUpdate, PolicyRule,
    Resolve, Resolved, Route, SecretSource,
};
pub use kernel::{DnsBackend, DnsSettings};
pub use secret::{Key, KeyError};
pub use step::{Needs, Step, StepError, StepKind, Trace};
