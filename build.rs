//! Generates the man page wg-exec(8) and the bash, zsh and fish completions from the clap
//! definitions in src/cli.rs, into OUT_DIR (scripts/package puts them into the Debian package;
//! `cargo build --message-format=json` names the directory). Never written by hand.

use clap::CommandFactory;
use std::path::PathBuf;

#[allow(dead_code)]
mod outcome {
    pub const EXIT_CODES: &str = include_str!("src/exit-codes.txt");
}

#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=src/exit-codes.txt");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut cmd = cli::Cli::command();
    // wg-exec(8), and a page for each command, which wg-exec(8) lists as wg-exec-up(8)…
    let render = |c: clap::Command, file: String| -> std::io::Result<()> {
        let mut page = Vec::new();
        clap_mangen::Man::new(c).section("8").render(&mut page)?;
        std::fs::write(out.join(file), page)
    };
    render(cmd.clone(), "wg-exec.8".into())?;
    for sub in cmd.get_subcommands() {
        let name = format!("wg-exec-{}", sub.get_name());
        // clap names are &'static: this build script ends right after.
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        let page = sub
            .clone()
            .name(leaked)
            .bin_name(format!("wg-exec {}", sub.get_name()));
        render(page, format!("{name}.8"))?;
    }
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd, "wg-exec", &out)?;
    }
    Ok(())
}
