//! Every relative link in the documentation (README.md, HACKING.md, BENCHMARKS.md, docs/*.md,
//! man/*.md) names a file of the repository, and its `#anchor`, when it has one, a heading of
//! that file (GitHub's anchors: lowercase, spaces as `-`, other punctuation dropped). The
//! reference moved into man/ and the guides into docs/: a link left behind fails here.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The documents whose links are checked.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut out: Vec<PathBuf> = ["README.md", "HACKING.md", "BENCHMARKS.md"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    for dir in ["docs", "man"] {
        let mut md: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        md.sort();
        out.extend(md);
    }
    out
}

/// The targets of the Markdown links `[text](target)` in `md`, outside code blocks and code
/// spans.
fn links(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || line.starts_with("    ") {
            continue;
        }
        // Drop code spans: what is between backticks is not a link.
        let text: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            match after.find(')') {
                Some(end) => {
                    out.push(after[..end].trim().to_string());
                    rest = &after[end..];
                }
                None => break,
            }
        }
    }
    out
}

/// GitHub's anchor of a heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings.
fn anchors(md: &str) -> Vec<String> {
    let mut fenced = false;
    md.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced && l.starts_with('#')
        })
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// What is wrong with `target`, a link in `doc`; None when it leads somewhere.
fn broken(doc: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (file, frag) = match target.split_once('#') {
        Some((f, a)) => (f, Some(a)),
        None => (target, None),
    };
    let path = match file {
        "" => doc.to_path_buf(),
        f => doc.parent().unwrap().join(f),
    };
    if !path.exists() {
        return Some(format!("{target}: {} does not exist", path.display()));
    }
    let frag = frag?;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match anchors(&text).iter().any(|a| a == frag) {
        true => None,
        false => Some(format!(
            "{target}: {} has no heading with the anchor #{frag}",
            path.display()
        )),
    }
}

#[test]
fn every_relative_link_in_the_documentation_leads_somewhere() {
    let mut bad = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text =
            std::fs::read_to_string(&doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
        for target in links(&text) {
            checked += 1;
            if let Some(why) = broken(&doc, &target) {
                bad.push(format!("{}: {why}", doc.display()));
            }
        }
    }
    assert!(
        checked >= 20,
        "only {checked} links found: the scan is broken"
    );
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

#[test]
fn the_check_finds_a_missing_file_and_a_missing_anchor() {
    let readme = Path::new(ROOT).join("README.md");
    assert!(broken(&readme, "docs/no-such-guide.md").is_some());
    assert!(broken(&readme, "man/wg-exec.ron.5.md#no-such-section").is_some());
    assert!(broken(&readme, "man/wg-exec.ron.5.md#full-tunnels").is_none());
    assert!(broken(&readme, "https://example.org/x").is_none());
    assert_eq!(
        links("see [a](b.md) and `[c](d.md)`\n    [e](f.md)\n"),
        vec!["b.md"]
    );
    assert_eq!(
        anchor("Migrating from the script backend"),
        "migrating-from-the-script-backend"
    );
    assert_eq!(anchor("wg-exec on NixOS"), "wg-exec-on-nixos");
}
