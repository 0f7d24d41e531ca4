//! Device-wide WireGuard settings: the private key (from the configuration, a file, or a file
//! generated on first use), its rotation, and the listen port and fwmark a reload changes.

mod gen_key;
mod key;
mod key_rotate;
mod set;

pub use gen_key::{GenerateKeyFile, RemoveKeyFile};
pub use key::DeviceKey;
pub use key_rotate::KeyRotate;
pub use set::DeviceSet;
