//! The `wg-exec` command line: parse, set up logging, run one command, map its outcome to the
//! documented exit code.

use clap::Parser;
use std::process::ExitCode;
use wg_exec::cli::{Cli, Command};
use wg_exec::commands;
use wg_exec::journald;
use wg_exec::outcome::end;

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
    if journald::stderr_is_journal() {
        // The journal has its own timestamps; each line carries its priority.
        builder.format(|buf, record| {
            use std::io::Write;
            let p = journald::prefix(record.level().into());
            writeln!(buf, "{p}{}", record.args())
        });
    } else {
        builder.format_timestamp(None).format_target(false);
    }
    builder.init();
}

/// Not dumpable: no core file, and no ptrace or /proc/PID/mem, environ or fd by the same
/// user (the non-root unit's daemon runs as that user) while keys are in memory. Children get
/// their own at exec.
#[allow(unsafe_code)]
fn not_dumpable() {
    // SAFETY: PR_SET_DUMPABLE takes an integer and changes only this process's flag.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if r != 0 {
        eprintln!(
            "wg-exec: warning: cannot turn core dumps off: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn main() -> ExitCode {
    not_dumpable();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // refresh runs as a service: its endpoint changes are news (info) without -v.
    let quiet = match cli.command {
        Command::Refresh(_) => 1,
        _ => 0,
    };
    init_logging(cli.verbose.max(quiet));
    let (op, iface) = cli.command.what();
    let (op, iface) = (op, iface.to_string());
    // A panic in a step is caught by the executor (rolled back, exit 1); one outside any step
    // ends here: exit 3 (4 for status: it cannot tell), never 101 (the journal keeps what was
    // done, for `down`).
    wg_exec::executor::install_panic_hook();
    let run = std::panic::catch_unwind(|| match &cli.command {
        Command::Up(t) => end(commands::up::run(t)),
        Command::Down(t) => end(commands::down::run(t)),
        Command::Reload(t) => end(commands::reload::run(t)),
        Command::Status(a) => commands::status::run(a),
        Command::Refresh(a) => commands::refresh::run(a),
        Command::Convert(a) => commands::convert::run(a),
        Command::Check(a) => end(commands::check::run(a)),
    });
    let outcome = run.unwrap_or_else(|payload| {
        use wg_exec::outcome::Outcome;
        let text = wg_exec::executor::panic_text(payload.as_ref());
        match &cli.command {
            Command::Status(_) => Outcome::Unknown(text),
            _ => Outcome::LeftBehind(vec![format!(
                "{text} outside any step; what was done is in the journal, if any: `wg-exec down {iface}` undoes it"
            )]),
        }
    });
    for line in outcome.lines(op, &iface) {
        journald::line(outcome.priority(), &line);
    }
    ExitCode::from(outcome.code())
}
