//! The Markdown extractor of the README tests: fenced code blocks with the `## ` section they
//! stand in, a section's text, the README's example with the command list `--print` is said to
//! show, and the first string field of a RON text.

use super::systemd::INSTANCE;

/// A fenced code block: its language, the `## ` section it stands in, its text (byte for byte,
/// each line with its newline) and the line number of its closing fence.
pub struct Block {
    pub lang: String,
    pub section: String,
    pub body: String,
    pub end_line: usize,
}

pub fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut open: Option<(String, String)> = None;
    for (n, line) in md.lines().enumerate() {
        match open.take() {
            Some((lang, body)) if line.trim_end() == "```" => out.push(Block {
                lang,
                section: section.clone(),
                body,
                end_line: n,
            }),
            Some((lang, mut body)) => {
                body.push_str(line);
                body.push('\n');
                open = Some((lang, body));
            }
            None => {
                if let Some(h) = line.strip_prefix("## ") {
                    section = h.trim().to_string();
                } else if let Some(lang) = line.strip_prefix("```") {
                    open = Some((lang.trim().to_string(), String::new()));
                }
            }
        }
    }
    assert!(open.is_none(), "README.md: a code fence is not closed");
    out
}

/// The example: the configuration as written, and the command list the README says
/// `wg-exec up wg0 --print` shows (the indented lines after that sentence).
pub struct Example {
    pub config: String,
    pub print: Vec<String>,
}

pub fn example(md: &str) -> Example {
    let all = blocks(md);
    let ron: Vec<&Block> = all
        .iter()
        .filter(|b| b.lang == "ron" && b.section == "Example")
        .collect();
    assert!(
        !ron.is_empty(),
        "README.md: no ```ron block under \"## Example\""
    );
    let block = ron[0];
    let lines: Vec<&str> = md.lines().collect();
    let marker = format!("`wg-exec up {INSTANCE} --print` shows:");
    let mut i = block.end_line + 1;
    while i < lines.len() && !lines[i].contains(&marker) {
        assert!(
            !lines[i].starts_with('#'),
            "README.md: no \"{marker}\" after the example"
        );
        i += 1;
    }
    assert!(i < lines.len(), "README.md: no \"{marker}\"");
    i += 1;
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    let mut print = Vec::new();
    while let Some(l) = lines.get(i).and_then(|l| l.strip_prefix("    ")) {
        print.push(l.to_string());
        i += 1;
    }
    assert!(
        !print.is_empty(),
        "README.md: no indented command list after \"{marker}\""
    );
    Example {
        config: block.body.clone(),
        print,
    }
}

/// The first `FIELD: "VALUE"` of a RON text (FIELD at the start of a word).
pub fn ron_string(config: &str, field: &str) -> String {
    let key = format!("{field}:");
    let mut from = 0;
    while let Some(at) = config[from..].find(&key).map(|p| p + from) {
        let word_start = match config[..at].chars().last() {
            None => true,
            Some(c) => c.is_whitespace() || c == '(' || c == ',',
        };
        if word_start {
            let rest = config[at + key.len()..].trim_start();
            let rest = rest
                .strip_prefix('"')
                .unwrap_or_else(|| panic!("{field}: not a string in the example"));
            return rest[..rest.find('"').expect("closing quote")].to_string();
        }
        from = at + key.len();
    }
    panic!("the README's example has no {field}");
}

/// The text of a `## ` section of a Markdown file, without its heading.
pub fn section(md: &str, title: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            inside = h.trim() == title;
            continue;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(!out.is_empty(), "no \"## {title}\" section");
    out
}
