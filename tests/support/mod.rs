//! The machinery the integration tests share, one file per concern: whether the real
//! environment is here (`env`), shell commands and unique names (`shell`), network namespaces
//! made and removed by a test (`netns`), guards for what wg-exec may leave behind (`guard`),
//! keys (`keys`), the real tests' scaffold: a test host and wg-exec run there (`host`), running wg-exec as root and as a non-root unit user (`run`), the independent
//! observers `wg show dump` and the UAPI socket (`observe`), the configuration writer (`conf`),
//! the rich configuration of the fake-kernel tests (`rich`); and the README tests' machinery: the
//! Markdown extractor (`markdown`), systemd units read (`systemd`) and emulated (`emulate`) in
//! a private mount namespace (`sandbox`). Everything a test needs at
//! hand is re-exported here, so that `use support::*;` brings it.
#![allow(dead_code, unused_imports)]

pub mod conf;
pub mod emulate;
pub mod env;
pub mod guard;
pub mod host;
pub mod keys;
pub mod markdown;
pub mod netns;
pub mod observe;
pub mod poll;
pub mod rich;
pub mod run;
pub mod sandbox;
pub mod shell;
pub mod systemd;

pub use emulate::*;
pub use env::*;
pub use guard::*;
pub use host::*;
pub use keys::*;
pub use markdown::*;
pub use netns::*;
pub use observe::*;
pub use poll::*;
pub use run::*;
pub use sandbox::*;
pub use shell::*;
pub use systemd::*;
