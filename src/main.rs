//! The `wg-exec` command line: `up`, `down` and `check` of one interface, mapped to documented
//! exit codes.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use wg_exec::config::{self, ConfigErrors, RouteTables};
use wg_exec::executor;
use wg_exec::executor::Watch;
use wg_exec::faults::{Faults, Watched};
use wg_exec::journal::{self, JournalFile, JournalUndo, State};
use wg_exec::linux::LinuxKernel;
use wg_exec::lock;
use wg_exec::plan;
use wg_exec::preflight;
use wg_exec::privileges::{self, Needs};
use wg_exec_steps::hook::{Hook, Phase};
use wg_exec_steps::{Backend, Kernel, Netns, Step};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failed, and everything already done was rolled back (the machine is as it was),
     or refused without changing anything (already up, not ours, lock busy)
  2  bad usage, bad configuration or missing capabilities; nothing was touched
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
    /// How long to wait for another wg-exec working on the same interface.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    wait: u64,
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

/// Exit 1 with a message, for failures where nothing was changed.
fn refuse(op: &str, iface: &str, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("wg-exec: {op} {iface}: {msg}");
    ExitCode::from(1)
}

/// The state directory, created if missing.
fn state_dir() -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = journal::state_dir();
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    Ok(dir)
}

fn needs_of(cfg: &config::Config) -> Needs {
    let hooks = [
        &cfg.pre_setup,
        &cfg.post_setup,
        &cfg.pre_shutdown,
        &cfg.post_shutdown,
    ];
    Needs {
        namespaces: cfg.socket_namespace.is_some() || cfg.interface_namespace.is_some(),
        modprobe: !matches!(cfg.backend, Backend::Userspace { .. }),
        low_port: cfg.listen_port.is_some_and(|p| p > 0 && p < 1024)
            && !matches!(cfg.backend, Backend::Kernel),
        hooks: hooks.iter().any(|h| !h.is_empty()),
    }
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
    let name = cfg.name.clone();
    let interrupted = signals();
    // Before capabilities are dropped: it opens PID 1's namespace.
    let mut kernel = match LinuxKernel::new(interrupted.clone()) {
        Ok(k) => k,
        Err(e) => return refuse("up", &name, format!("{e:#}; nothing was changed")),
    };
    let outcome = match privileges::check_and_drop(&needs_of(&cfg)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("wg-exec: up {name}: {e}; nothing was changed");
            return ExitCode::from(2);
        }
    };
    if !outcome.modprobe {
        steps.retain(|s| s.name() != "modprobe");
    }
    let dir = match state_dir() {
        Ok(d) => d,
        Err(e) => return refuse("up", &name, format!("{e}; nothing was changed")),
    };
    let _lock = match lock::acquire(&dir, &name, Duration::from_secs(t.wait), &interrupted) {
        Ok(l) => l,
        Err(e) => return refuse("up", &name, format!("{e}; nothing was changed")),
    };
    let jpath = journal::path_for(&dir, &name);
    match journal::load(&jpath) {
        Err(e) => return refuse("up", &name, format!("{e}; remove it after checking what it says; nothing was changed")),
        Ok(Some(j)) if j.state == State::Complete && !journal::link_present(&j, &mut kernel) => {
            eprintln!(
                "wg-exec: up {name}: the journal {} says it is up, but its link is gone (deleted by hand?); starting over",
                jpath.display()
            );
            let _ = std::fs::remove_file(&jpath);
        }
        Ok(Some(j)) if j.state == State::Complete => {
            return refuse(
                "up",
                &name,
                format!("it is already up (journal {}); run `wg-exec down {name}` first; nothing was changed", jpath.display()),
            )
        }
        Ok(Some(j)) => {
            eprintln!(
                "wg-exec: up {name}: an earlier {} by pid {} did not finish; rolling it back first",
                match j.state {
                    State::Incomplete => "rollback",
                    _ => "up",
                },
                j.pid
            );
            let (done, failures) = journal::undo(&j, &mut kernel);
            if !failures.is_empty() {
                for f in &failures {
                    eprintln!("wg-exec: up {name}: recovery: {f}");
                }
                eprintln!("wg-exec: up {name}: the unfinished transaction could not be rolled back; nothing new was done");
                return ExitCode::from(3);
            }
            eprintln!(
                "wg-exec: up {name}: rolled back the unfinished transaction{}",
                match done.is_empty() {
                    true => " (nothing was left)".to_string(),
                    false => format!(": removed {}", done.join(", ")),
                }
            );
            let _ = std::fs::remove_file(&jpath);
        }
        Ok(None) => {
            // Never adopt (or later delete) an interface wg-exec did not create.
            let places = [plan::socket_ns(&cfg), plan::interface_ns(&cfg)];
            for ns in places.iter().collect::<std::collections::BTreeSet<&Netns>>() {
                match kernel.link_exists(ns, &name) {
                    Ok(true) => {
                        return refuse(
                            "up",
                            &name,
                            format!(
                                "{} already exists and wg-exec has no record of creating it (no journal {}); it is left alone: remove it or choose another name",
                                wg_exec_steps::step::object(&name, ns),
                                jpath.display()
                            ),
                        )
                    }
                    Ok(false) => {}
                    Err(e) => return refuse("up", &name, format!("cannot look for {name} in {ns}: {e}; nothing was changed")),
                }
            }
        }
    }
    // Written first with the first step that leaves something behind (its intent).
    let mut jfile = JournalFile::new(jpath, &cfg, State::Up);
    let mut watch = Watched {
        journal: Some(&mut jfile),
        faults: Faults::from_env(interrupted.clone()),
    };
    let result = executor::up(&mut steps, &mut kernel, &interrupted, &mut watch);
    match result {
        Ok(()) => {
            if let Err(e) = jfile.set_state(State::Complete) {
                log::error!("cannot update journal {}: {e}", jfile.path.display());
            }
            log::info!("{name} is up");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wg-exec: up {name}: {e}");
            match e.incomplete() {
                false => {
                    let _ = jfile.remove();
                    ExitCode::from(1)
                }
                true => {
                    let _ = jfile.set_state(State::Incomplete);
                    eprintln!(
                        "wg-exec: up {name}: the journal {} keeps what is left; `wg-exec down {name}` tries again",
                        jfile.path.display()
                    );
                    ExitCode::from(3)
                }
            }
        }
    }
}

/// No journal at all: a watch that only carries the test switches.
struct NoJournal;
impl Watch for NoJournal {}

fn down(t: Target) -> ExitCode {
    let path = config::config_path(&t.iface, t.config.as_deref());
    if t.print {
        return match config::load(&t.iface, &path, &RouteTables::system()) {
            Ok((cfg, _)) => {
                print!("{}", executor::print(&plan::down(&cfg)));
                ExitCode::SUCCESS
            }
            Err(errors) => {
                report_config_errors(&errors);
                ExitCode::from(2)
            }
        };
    }
    let name = t.iface.clone();
    if let Err(m) = config::check_interface_name(&name) {
        eprintln!("wg-exec: error: interface name (command line): {m}");
        return ExitCode::from(2);
    }
    // Down is not interrupted by signals: they are noted and the work goes on.
    let noted = signals();
    let dir = match state_dir() {
        Ok(d) => d,
        Err(e) => return refuse("down", &name, e),
    };
    let jpath = journal::path_for(&dir, &name);
    let recorded = match journal::load(&jpath) {
        Ok(j) => j,
        Err(e) => return refuse("down", &name, format!("{e}; nothing was changed")),
    };
    // With a journal, down follows it alone, with the shutdown hooks recorded at up: the
    // configuration may have changed or be gone. Without one, the configuration is validated
    // and followed.
    let (hooks, cfg) = match &recorded {
        Some(j) => {
            log::debug!("following the journal {}", jpath.display());
            (
                Some((j.pre_shutdown.clone(), j.post_shutdown.clone())),
                None,
            )
        }
        None => match config::load(&name, &path, &RouteTables::system()) {
            Ok((cfg, warnings)) => {
                for w in warnings {
                    eprintln!("wg-exec: warning: {w}");
                }
                (
                    Some((cfg.pre_shutdown.clone(), cfg.post_shutdown.clone())),
                    Some(cfg),
                )
            }
            Err(errors) => {
                report_config_errors(&errors);
                return ExitCode::from(2);
            }
        },
    };
    let has_hooks = hooks
        .as_ref()
        .is_some_and(|(pre, post)| !pre.is_empty() || !post.is_empty());
    let needs = match (&cfg, &recorded) {
        (Some(c), _) => Needs {
            modprobe: false,
            ..needs_of(c)
        },
        (None, Some(j)) => Needs {
            namespaces: j.records.iter().any(|r| {
                matches!(
                    &r.what,
                    journal::What::Link { netns: Some(_), .. } | journal::What::Move { .. }
                )
            }),
            modprobe: false,
            low_port: false,
            hooks: has_hooks,
        },
        (None, None) => unreachable!("handled above"),
    };
    let mut kernel = match LinuxKernel::new(noted.clone()) {
        Ok(k) => k,
        Err(e) => return refuse("down", &name, format!("{e:#}; nothing was changed")),
    };
    if let Err(e) = privileges::check_and_drop(&needs) {
        eprintln!("wg-exec: down {name}: {e}; nothing was changed");
        return ExitCode::from(2);
    }
    let _lock = match lock::acquire(
        &dir,
        &name,
        Duration::from_secs(t.wait),
        &Arc::new(AtomicBool::new(false)),
    ) {
        Ok(l) => l,
        Err(e) => return refuse("down", &name, format!("{e}; nothing was changed")),
    };
    // Read again under the lock: an up may have finished meanwhile.
    let recorded = match journal::load(&jpath) {
        Ok(j) => j,
        Err(e) => return refuse("down", &name, format!("{e}; nothing was changed")),
    };
    let hook = |phase: Phase, lines: Option<&Vec<String>>| -> Option<Box<dyn Step>> {
        lines.filter(|l| !l.is_empty()).map(|l| {
            Box::new(Hook {
                phase,
                device: name.clone(),
                lines: l.clone(),
            }) as Box<dyn Step>
        })
    };
    let mut steps: plan::Plan = match (&recorded, &cfg) {
        (Some(j), _) => {
            let mut s: plan::Plan = Vec::new();
            s.extend(hook(Phase::PreShutdown, hooks.as_ref().map(|h| &h.0)));
            s.push(Box::new(JournalUndo { journal: j.clone() }));
            s.extend(hook(Phase::PostShutdown, hooks.as_ref().map(|h| &h.1)));
            s
        }
        (None, Some(c)) => {
            eprintln!(
                "wg-exec: down {name}: no journal ({}): falling back to the configuration",
                jpath.display()
            );
            plan::down(c)
        }
        (None, None) => {
            // There was a journal before the lock, and another down removed it meanwhile.
            eprintln!(
                "wg-exec: down {name}: another wg-exec took it down meanwhile; nothing left to do"
            );
            return ExitCode::SUCCESS;
        }
    };
    if let Some(j) = &recorded {
        for r in &j.records {
            if let journal::What::Link {
                name: link,
                userspace_pids,
                ..
            } = &r.what
            {
                kernel.expect_userspace(link, userspace_pids);
            }
        }
    }
    let jfile = recorded.map(|j| JournalFile {
        path: jpath.clone(),
        journal: j,
    });
    // The journal is left as it is until the link is gone: a down killed half-way is repeated
    // by the next down, and the next up either finds the link (and asks for a down) or finds
    // it gone (and starts over).
    let mut watch: Watched<NoJournal> = Watched {
        journal: None,
        faults: Faults::from_env(noted.clone()),
    };
    let failures = executor::down(&mut steps, &mut kernel, &mut watch);
    let teardown_failed = failures.iter().any(|f| f.step == "teardown");
    if !teardown_failed {
        if let Some(jf) = &jfile {
            if let Err(e) = jf.remove() {
                log::error!("cannot remove journal {}: {e}", jf.path.display());
            }
        }
    }
    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    for f in &failures {
        eprintln!("wg-exec: down {name}: {f}");
    }
    match teardown_failed {
        true => {
            let left = failures
                .iter()
                .find(|f| f.step == "teardown")
                .map(|f| f.object.clone())
                .unwrap_or_default();
            eprintln!("wg-exec: down {name}: left behind: {left}; the journal {} keeps it for the next down", jpath.display());
            ExitCode::from(3)
        }
        false => ExitCode::from(1),
    }
}
