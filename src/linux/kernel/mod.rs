//! The real kernel, one implementation of each noun trait of the seam per file.

mod addresses;
mod dns;
mod files;
mod hooks;
mod links;
mod modules;
mod nftables;
mod resolver;
mod routes;
mod rules;
mod sysctl;
mod wireguard;
