//! The link's addresses: added at up, added or removed by a reload.

mod add;
mod remove;

pub use add::Addresses;
pub use remove::AddressesRemove;
