//! Generates, into OUT_DIR, the man pages from their Markdown sources in man/ (the one copy of
//! the manual: wg-exec(8) from man/wg-exec.8.md, a page wg-exec-COMMAND(8) for each command
//! made of its section under "# COMMANDS" there, wg-exec.ron(5) from man/wg-exec.ron.5.md), and
//! the bash, zsh and fish completions from the clap definitions in src/cli.rs.
//! scripts/package puts them into the Debian package; `cargo build --message-format=json`
//! names the directory. Never written by hand.

use clap::CommandFactory;
use std::path::{Path, PathBuf};

#[allow(dead_code)]
mod outcome {
    pub const EXIT_CODES: &str = include_str!("src/exit-codes.txt");
}

#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

#[path = "man/mdroff.rs"]
mod mdroff;

/// The date a source gives in its first line, `<!-- date: YYYY-MM-DD -->`.
fn date_of(path: &str, md: &str) -> String {
    md.lines()
        .next()
        .and_then(|l| l.strip_prefix("<!-- date: "))
        .and_then(|l| l.strip_suffix(" -->"))
        .unwrap_or_else(|| panic!("{path}: the first line must be <!-- date: YYYY-MM-DD -->"))
        .to_string()
}

/// The `## NAME` subsections of the `# COMMANDS` section: (name, text without the heading).
fn commands(md: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut inside = false;
    let mut fence = false;
    for line in md.lines() {
        if line.starts_with("```") {
            fence = !fence;
        }
        if !fence {
            if let Some(h) = line.strip_prefix("# ") {
                inside = h.trim() == "COMMANDS";
                continue;
            }
            if inside {
                if let Some(h) = line.strip_prefix("## ") {
                    out.push((h.trim().to_string(), String::new()));
                    continue;
                }
            }
        }
        if let (true, Some((_, text))) = (inside, out.last_mut()) {
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// The text of a `# TITLE` section (without its heading).
fn section(md: &str, title: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("# ") {
            inside = h.trim() == title;
            continue;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The bullet items of a section, each with the flags it names (`**--name**`, `**-x**`).
fn flag_items(text: &str) -> Vec<(Vec<String>, String)> {
    let mut items: Vec<(Vec<String>, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with("- ") {
            items.push((Vec::new(), String::new()));
        } else if !line.starts_with("  ") {
            continue;
        }
        if let Some((_, item)) = items.last_mut() {
            item.push_str(line);
            item.push('\n');
        }
    }
    for (flags, item) in &mut items {
        for (i, span) in item.split("**").enumerate() {
            if i % 2 == 1 && span.starts_with('-') {
                flags.push(span.to_string());
            }
        }
    }
    items
}

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=src/exit-codes.txt");
    println!("cargo:rerun-if-changed=man");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let source = format!("wg-exec {version}");
    let read = |p: &str| {
        println!("cargo:rerun-if-changed={p}");
        std::fs::read_to_string(Path::new(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let write = |file: &str, text: String| std::fs::write(out.join(file), text);

    let main_md = read("man/wg-exec.8.md");
    let date = date_of("man/wg-exec.8.md", &main_md);
    write(
        "wg-exec.8",
        mdroff::page(
            &main_md,
            &mdroff::Header {
                name: "WG-EXEC",
                section: "8",
                date: &date,
                source: &source,
                manual: "System Manager's Manual",
            },
        ),
    )?;

    let ron_md = read("man/wg-exec.ron.5.md");
    let ron_date = date_of("man/wg-exec.ron.5.md", &ron_md);
    write(
        "wg-exec.ron.5",
        mdroff::page(
            &ron_md,
            &mdroff::Header {
                name: "WG-EXEC.RON",
                section: "5",
                date: &ron_date,
                source: &source,
                manual: "File Formats Manual",
            },
        ),
    )?;

    // A page for each command: its one-line help from clap, its synopsis (the first paragraph
    // of its section), the rest of its section, the items of OPTIONS that name its flags (as
    // clap has them, --help and the global ones included) and EXIT STATUS. Every command clap
    // knows has a section, and every flag an item.
    let mut cmd = cli::Cli::command();
    let mut built = cmd.clone();
    built.build();
    let sections = commands(&main_md);
    let options = flag_items(&section(&main_md, "OPTIONS"));
    let exit_status = section(&main_md, "EXIT STATUS");
    // (clap's own `help` subcommand, made by build(), is not one of ours.)
    let ours: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
    for sub in built
        .get_subcommands()
        .filter(|c| ours.contains(&c.get_name()))
    {
        let mut flags = Vec::new();
        for arg in sub.get_arguments().filter(|a| !a.is_positional()) {
            flags.extend(arg.get_long().map(|l| format!("--{l}")));
            flags.extend(arg.get_short().map(|s| format!("-{s}")));
        }
        let mut items = String::new();
        for flag in &flags {
            assert!(
                options.iter().any(|(f, _)| f.contains(flag)),
                "man/wg-exec.8.md: no item under \"# OPTIONS\" names **{flag}** (wg-exec {})",
                sub.get_name()
            );
        }
        for (f, item) in &options {
            if f.iter().any(|f| flags.contains(f)) {
                items.push_str(item);
            }
        }
        let name = sub.get_name();
        let (_, text) = sections
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("man/wg-exec.8.md: no \"## {name}\" under \"# COMMANDS\""));
        let text = text.trim_start();
        let (synopsis, rest) = text.split_once("\n\n").unwrap_or((text, ""));
        let about = sub
            .get_about()
            .map(|a| a.to_string())
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_string();
        let rest = rest
            .lines()
            .map(|l| match l.strip_prefix("### ") {
                Some(h) => format!("## {h}"),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let md = format!(
            "# NAME\n\nwg-exec-{name} - {about}\n\n# SYNOPSIS\n\n{synopsis}\n\n\
             # DESCRIPTION\n\n{rest}\n\n# OPTIONS\n\n{items}\n# EXIT STATUS\n{exit_status}\n\
             # SEE ALSO\n\n**wg-exec**(8), **wg-exec.ron**(5)\n"
        );
        let upper = format!("WG-EXEC-{}", name.to_uppercase());
        write(
            &format!("wg-exec-{name}.8"),
            mdroff::page(
                &md,
                &mdroff::Header {
                    name: &upper,
                    section: "8",
                    date: &date,
                    source: &source,
                    manual: "System Manager's Manual",
                },
            ),
        )?;
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
