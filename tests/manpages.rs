//! The man pages build.rs makes from man/*.md (into OUT_DIR, which the package installs):
//! every command clap knows has its page wg-exec-COMMAND(8), that page and wg-exec(8) name every
//! flag the command's `--help` lists (read from clap's definition, typed, not from the help
//! text), wg-exec.ron(5) has a row for every configuration field the loader accepts and shows
//! the shipped example, and `mandoc -T lint` and `groff -ww` have nothing to say about any page.
//! mandoc and groff come from scripts/setup; without them these tests fail, naming the package.

use clap::CommandFactory;
use std::path::{Path, PathBuf};
use std::process::Command;

const OUT_DIR: &str = env!("OUT_DIR");

fn page(name: &str) -> String {
    let path = Path::new(OUT_DIR).join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (build.rs makes it)", path.display()))
}

/// Every page build.rs made.
fn pages() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(OUT_DIR)
        .unwrap_or_else(|e| panic!("{OUT_DIR}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("5" | "8")))
        .collect();
    out.sort();
    out
}

/// How a flag is written in roff: every `-` as `\-`.
fn roff(flag: &str) -> String {
    flag.replace('-', "\\-")
}

/// Whether `text` names `flag` as a whole word (`--config`, not `--config-dir`; `-v`, not
/// `-vv`).
fn names(text: &str, flag: &str) -> bool {
    let text = &["\\fB", "\\fI", "\\fR"]
        .iter()
        .fold(text.to_string(), |t, font| t.replace(font, ""));
    let f = roff(flag);
    let mut from = 0;
    while let Some(at) = text[from..].find(&f).map(|p| p + from) {
        let before = text[..at].chars().last();
        let after = text[at + f.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        // Before: not a word character and not a further `\-` (so -v is not found in --verbose).
        let before_ok = !word(before) && !text[..at].ends_with("\\-");
        let after_ok = !word(after) && !text[at + f.len()..].starts_with("\\-");
        if before_ok && after_ok {
            return true;
        }
        from = at + f.len();
    }
    false
}

/// The flags `wg-exec NAME --help` lists (clap's definition after build(): the command's own,
/// the global ones and --help), and those of `wg-exec --help` for NAME = None.
fn flags(name: Option<&str>) -> Vec<String> {
    let mut cmd = wg_exec::cli::Cli::command();
    cmd.build();
    let c = match name {
        None => &cmd,
        Some(n) => cmd.find_subcommand(n).unwrap(),
    };
    let mut out = Vec::new();
    for arg in c.get_arguments().filter(|a| !a.is_positional()) {
        out.extend(arg.get_long().map(|l| format!("--{l}")));
        out.extend(arg.get_short().map(|s| format!("-{s}")));
    }
    assert!(!out.is_empty(), "{name:?}: clap lists no flag");
    out
}

/// The commands of wg-exec (not clap's own `help`).
fn commands() -> Vec<String> {
    wg_exec::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

#[test]
fn every_command_has_a_page_that_names_every_flag_its_help_lists() {
    let main = page("wg-exec.8");
    let cmds = commands();
    assert!(cmds.len() >= 7, "{cmds:?}");
    for flag in flags(None) {
        assert!(names(&main, &flag), "wg-exec(8) does not name {flag}");
    }
    for cmd in &cmds {
        let text = page(&format!("wg-exec-{cmd}.8"));
        assert!(
            text.starts_with(&format!(".TH \"WG-EXEC-{}\" \"8\"", cmd.to_uppercase())),
            "wg-exec-{cmd}(8): its header"
        );
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS"] {
            assert!(
                text.contains(&format!(".SH \"{section}\"")),
                "wg-exec-{cmd}(8) has no {section}"
            );
        }
        assert!(
            main.contains(&format!(".SS \"{cmd}\"")),
            "wg-exec(8) has no section for {cmd}"
        );
        assert!(
            main.contains(&format!("wg\\-exec\\-{cmd}\\fR(8)")),
            "wg-exec(8)'s SEE ALSO does not list wg-exec-{cmd}(8)"
        );
        for flag in flags(Some(cmd)) {
            assert!(
                names(&text, &flag),
                "wg-exec-{cmd}(8) does not name {flag}, which `wg-exec {cmd} --help` lists"
            );
            assert!(
                names(&main, &flag),
                "wg-exec(8) does not name {flag} of {cmd}"
            );
        }
    }
    // The check itself: a flag no page has is not found.
    assert!(!names(&main, "--no-such-flag"));
    assert!(!names("\\fB\\-\\-verbose\\fR", "-v"));
}

/// The field names of a `const NAME: &[&str] = &[...]` in a source file of the loader.
fn const_list(file: &str, name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let src = std::fs::read_to_string(&path).unwrap();
    let start = src
        .find(&format!("const {name}: &[&str] = &["))
        .unwrap_or_else(|| panic!("{file}: no {name}"));
    let body = &src[start..];
    let body = &body[body.find("= &[").unwrap() + 4..body.find("];").unwrap()];
    let out: Vec<String> = body
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect();
    assert!(out.len() >= 9, "{file}: {name}: {out:?}");
    out
}

/// The tags of the `.TP` items under a `.SH` of a page.
fn tags(text: &str, section: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(h) = line.strip_prefix(".SH ") {
            inside = h == format!("\"{section}\"");
        } else if inside && line == ".TP" {
            out.push(lines.next().unwrap_or("").to_string());
        }
    }
    out
}

#[test]
fn the_configuration_page_has_every_field_and_the_shipped_example() {
    let text = page("wg-exec.ron.5");
    for (section, file, list) in [
        ("INTERFACE", "src/config/raw.rs", "INTERFACE_FIELDS"),
        ("PEER", "src/config/validate.rs", "PEER_FIELDS"),
    ] {
        let tags = tags(&text, section);
        let fields = const_list(file, list);
        for field in &fields {
            let tag = format!("\\fB{}\\fR", roff(field));
            assert!(
                tags.contains(&tag),
                "wg-exec.ron(5) {section}: no row for `{field}` ({list} in {file}); rows: {tags:?}"
            );
        }
        assert_eq!(
            tags.len(),
            fields.len(),
            "wg-exec.ron(5) {section}: rows {tags:?} against {list} {fields:?}"
        );
    }
    // The example under EXAMPLE is examples/wg0.ron, line for line (its comments left out).
    let md = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/wg-exec.ron.5.md"))
        .unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wg0.ron")).unwrap();
    let indented: String = example
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| format!("    {l}\n"))
        .collect();
    let after = &md[md
        .find("\n# EXAMPLE\n")
        .expect("man/wg-exec.ron.5.md: # EXAMPLE")..];
    assert!(
        after.contains(&indented),
        "man/wg-exec.ron.5.md's EXAMPLE is not examples/wg0.ron"
    );
}

/// Runs a linter on every page; it must exit 0 and print nothing.
fn lint(tool: &str, args: &[&str], package: &str) {
    let all = pages();
    assert!(all.len() >= 9, "pages in {OUT_DIR}: {all:?}");
    for p in all {
        let out = Command::new(tool)
            .args(args)
            .arg(&p)
            .output()
            .unwrap_or_else(|e| {
                panic!("{tool}: {e} (Debian: apt install {package}; scripts/setup does)")
            });
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{tool} {args:?} {}: {}\n{said}",
            p.display(),
            out.status
        );
    }
}

#[test]
fn mandoc_lint_finds_nothing_in_any_page() {
    lint("mandoc", &["-T", "lint", "-W", "all"], "mandoc");
    // The linter does speak up about a bad page (so that silence above means something).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.8");
    std::fs::write(&bad, ".TH BAD 8\n.PP\n.SH NAME\nbad\n").unwrap();
    let out = Command::new("mandoc")
        .args(["-T", "lint", "-W", "all"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        !out.status.success() && (!out.stderr.is_empty() || !out.stdout.is_empty()),
        "mandoc -T lint passes a page with an empty paragraph and no date"
    );
}

#[test]
fn groff_warns_about_nothing_in_any_page() {
    lint("groff", &["-ww", "-z", "-man", "-t"], "groff");
}
