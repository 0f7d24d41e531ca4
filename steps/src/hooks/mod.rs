//! What runs beside the steps proper: the configuration's hook scripts and the module load.

mod hook;
mod modprobe;

pub use hook::{Hook, Phase};
pub use modprobe::Modprobe;
