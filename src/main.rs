//! The `wg-exec` command line: `up`, `down` and `check` of one interface, mapped to documented
//! exit codes.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use wg_exec::config::{self, ConfigErrors, RouteTables};
use wg_exec::executor;
use wg_exec::linux::LinuxKernel;
use wg_exec::plan;
use wg_exec::preflight;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failed, and everything already done was rolled back (the machine is as it was)
  2  bad usage or configuration; nothing was touched
  3  failed, and the rollback was incomplete: what is left behind is listed

Configuration: /etc/wg-exec/IFACE.ron, or $WG_EXEC_CONFIG_DIR/IFACE.ron, or --config FILE.";

#[derive(Parser)]
#[command(
    name = "wg-exec",
    version,
    about = "Bring one WireGuard interface up or down from a declarative RON description",
    after_help = EXIT_CODES
)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and configure the interface; on any failure undo everything.
    Up(Target),
    /// Remove the interface and run the shutdown hooks.
    Down(Target),
    /// Validate the configuration and its key files, print the warnings, change nothing.
    Check(CheckArgs),
}

#[derive(clap::Args)]
struct Target {
    /// Interface name (1-15 bytes).
    iface: String,
    /// Read this file instead of /etc/wg-exec/IFACE.ron.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the plan as equivalent ip/wg commands and change nothing (needs no privileges).
    #[arg(long)]
    print: bool,
}

#[derive(clap::Args)]
struct CheckArgs {
    iface: String,
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level));
    if verbose > 0 {
        builder.parse_filters(level);
    }
    builder.format_timestamp(None).format_target(false).init();
}

fn load(iface: &str, path: Option<&PathBuf>) -> Result<config::Config, ExitCode> {
    let path = config::config_path(iface, path.map(|p| p.as_path()));
    match config::load(iface, &path, &RouteTables::system()) {
        Ok((cfg, warnings)) => {
            for w in warnings {
                eprintln!("wg-exec: warning: {w}");
            }
            Ok(cfg)
        }
        Err(errors) => {
            report_config_errors(&errors);
            Err(ExitCode::from(2))
        }
    }
}

fn report_config_errors(errors: &ConfigErrors) {
    for e in &errors.0 {
        eprintln!("wg-exec: error: {e}");
    }
}

/// File and namespace checks; returns false (after printing) on any error.
fn preflight_ok(cfg: &config::Config) -> bool {
    let p = preflight::run(cfg, std::path::Path::new(preflight::NETNS_DIR));
    for w in &p.warnings {
        eprintln!("wg-exec: warning: {w}");
    }
    report_config_errors(&ConfigErrors(p.errors.clone()));
    p.errors.is_empty()
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.use_stderr() {
                true => ExitCode::from(2),
                false => ExitCode::SUCCESS,
            };
        }
    };
    init_logging(cli.verbose);
    match cli.command {
        Command::Check(a) => {
            let cfg = match load(&a.iface, a.config.as_ref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if !preflight_ok(&cfg) {
                return ExitCode::from(2);
            }
            println!(
                "{}: {} is valid ({} peer{})",
                cfg.name,
                cfg.path.display(),
                cfg.peers.len(),
                if cfg.peers.len() == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Command::Up(t) => up(t),
        Command::Down(t) => down(t),
    }
}

fn signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&flag)) {
            log::warn!("cannot watch signal {sig}: {e}");
        }
    }
    flag
}

fn up(t: Target) -> ExitCode {
    let cfg = match load(&t.iface, t.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut steps = plan::up(&cfg);
    if t.print {
        print!("{}", executor::print(&steps));
        return ExitCode::SUCCESS;
    }
    if !preflight_ok(&cfg) {
        return ExitCode::from(2);
    }
    let interrupted = signals();
    let mut kernel = match LinuxKernel::new(interrupted.clone()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("wg-exec: up {}: {e:#}; nothing was changed", cfg.name);
            return ExitCode::from(1);
        }
    };
    match executor::up(&mut steps, &mut kernel, &interrupted) {
        Ok(()) => {
            log::info!("{} is up", cfg.name);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wg-exec: up {}: {e}", cfg.name);
            match e.incomplete() {
                true => ExitCode::from(3),
                false => ExitCode::from(1),
            }
        }
    }
}

fn down(t: Target) -> ExitCode {
    let cfg = match load(&t.iface, t.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut steps = plan::down(&cfg);
    if t.print {
        print!("{}", executor::print(&steps));
        return ExitCode::SUCCESS;
    }
    // Down is not interrupted by signals: note them and finish.
    let noted = signals();
    let mut kernel = match LinuxKernel::new(noted) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("wg-exec: down {}: {e:#}", cfg.name);
            return ExitCode::from(3);
        }
    };
    let failures = executor::down(&mut steps, &mut kernel);
    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    for f in &failures {
        eprintln!("wg-exec: down {}: {f}", cfg.name);
    }
    // The link still existing is what matters: anything else (a hook) was reported.
    match failures.iter().any(|f| f.step == "teardown") {
        true => {
            eprintln!(
                "wg-exec: down {}: {} is left behind",
                cfg.name, failures[0].object
            );
            ExitCode::from(3)
        }
        false => ExitCode::from(1),
    }
}
