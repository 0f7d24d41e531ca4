//! The machinery the integration tests share, one file per concern (`mod support;` in a test
//! file, then `use support::*;` brings everything re-exported here):
//! - `env`: whether the real environment is here; under CI=true a missing piece fails loudly.
//! - `shell`: shell commands, unique names, output as text.
//! - `netns`: network namespaces a test makes and always removes; two hosts on a veth; a
//!   namespace playing PID 1's; snapshots of links, addresses, routes and rules.
//! - `guard`: wg-exec's files in its default state directory, and the guard that removes them.
//! - `keys`: keys made by `wg`, and the files a configuration names.
//! - `run`: wg-exec run as root and as a non-root unit user with ambient capabilities.
//! - `host`: the real tests' scaffold: a test host in the plain shape, and wg-exec for one
//!   interface run there as root or as the unit user, with a state directory of its own.
//! - `observe`: independent observers (`wg show dump`, the UAPI socket, wireguard-go).
//! - `poll`: bounded polls and pings, wg-exec spawned and held at a test pause.
//! - `conf`: the configuration writer; `rich`: the rich configuration of the fake-kernel tests.
//! - The README tests' machinery: the Markdown extractor (`markdown`), systemd units read
//!   (`systemd`) and emulated (`emulate`) in a private mount namespace (`sandbox`).
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
