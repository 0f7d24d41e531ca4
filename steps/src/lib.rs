//! The steps of wg-exec: the [`Step`] trait, the [`Kernel`] seam every privileged action goes
//! through, and one file per step, in a folder per subsystem (link, address, route, peer,
//! device, policy, dns, hooks). Nothing here parses configuration or knows about processes;
//! the `wg-exec` binary builds plans out of these steps and runs them transactionally.
//!
//! Every step and every type of the seam is re-exported here: users import from the crate's
//! root (`wg_exec_steps::LinkAdd`), so that files can move between folders without rippling.

pub mod fake;
pub mod kernel;
pub mod produced;
pub mod secret;
pub mod step;

pub mod address;
pub mod device;
pub mod dns;
pub mod hooks;
pub mod link;
pub mod peer;
pub mod policy;
pub mod route;

pub use address::{Addresses, AddressesRemove};
pub use device::{DeviceKey, DeviceSet, GenerateKeyFile, KeyRotate, RemoveKeyFile};
pub use dns::{Dns, DnsRevert};
pub use hooks::{Hook, Modprobe, Phase};
pub use link::{LinkAdd, LinkUp, Mtu, NetnsMove, Teardown};
pub use peer::{PeerPlan, PeerRemove, PeerSet, PeerUpdates, PlannedUpdate};
pub use policy::{
    AutoMtu, ChooseTable, DefaultRoutes, FindAndRemovePolicy, Firewall, FullTunnel, PolicyObject,
    PolicyRules, RemovePolicy, SrcValidMark,
};
pub use route::{Routes, RoutesRemove};

pub use kernel::{
    AllowedIpsChange, Backend, BatchError, DeviceSettings, Endpoint, Kernel, KernelError,
    LinkState, LiveDevice, LivePeer, Netns, NftTable, PeerSettings, PeerUpdate, PolicyRule,
    Resolve, Resolved, Route, SecretSource,
};
pub use kernel::{DnsBackend, DnsSettings};
pub use produced::Produced;
pub use secret::{Key, KeyError};
pub use step::{join_human, object, Needs, Step, StepError, StepKind, Trace};
