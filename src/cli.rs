//! The command line's types (clap) and its help text.

use crate::outcome::EXIT_CODES;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "wg-exec",
    version,
    about = "Bring one WireGuard interface up or down from a declarative RON description",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create and configure the interface; on any failure undo everything.
    Up(Target),
    /// Remove the interface and run the shutdown hooks.
    Down(Target),
    /// Change the live interface to match its configuration, touching only what differs.
    Reload(Target),
    /// Show the interface next to its record and configuration; exit 1 when they differ.
    Status(StatusArgs),
    /// Follow DNS for peer endpoints known by name (long-running; --once for one pass).
    Refresh(RefreshArgs),
    /// Print a wg-quick .conf file as the equivalent RON configuration.
    Convert(ConvertArgs),
    /// Validate the configuration and its key files, print the warnings, change nothing.
    Check(CheckArgs),
}

impl Command {
    /// The operation and interface, for messages.
    pub fn what(&self) -> (&'static str, &str) {
        match self {
            Command::Up(t) => ("up", &t.iface),
            Command::Down(t) => ("down", &t.iface),
            Command::Reload(t) => ("reload", &t.iface),
            Command::Status(a) => ("status", &a.iface),
            Command::Refresh(a) => ("refresh", &a.iface),
            Command::Convert(a) => ("convert", a.file.to_str().unwrap_or("FILE")),
            Command::Check(a) => ("check", &a.iface),
        }
    }
}

#[derive(clap::Args)]
pub struct Target {
    /// Interface name (1-15 bytes).
    pub iface: String,
    /// Read this file instead of /etc/wg-exec/IFACE.ron.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the plan as equivalent ip/wg commands and change nothing (up and down need no
    /// privileges for it; reload reads the live interface).
    #[arg(long)]
    pub print: bool,
    /// How long to wait for another wg-exec working on the same interface.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub wait: u64,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Interface name (1-15 bytes).
    pub iface: String,
    /// Read this file instead of /etc/wg-exec/IFACE.ron.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Interface name (1-15 bytes).
    pub iface: String,
    /// Compare with this configuration instead of /etc/wg-exec/IFACE.ron.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// One JSON document instead of text (its fields: wg-exec-status(8)).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct RefreshArgs {
    /// Interface name (1-15 bytes).
    pub iface: String,
    /// Take the refresh periods from this configuration instead of what up applied.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// One pass over every peer known by name, then exit.
    #[arg(long)]
    pub once: bool,
}

#[derive(clap::Args)]
pub struct ConvertArgs {
    /// The wg-quick file (NAME.conf: the interface name comes from it).
    pub file: PathBuf,
    /// Write the RON to this new file, created 0600 whatever the umask (an existing file or a
    /// symbolic link there is refused), instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
