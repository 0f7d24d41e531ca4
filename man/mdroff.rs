//! The man pages' Markdown (man/*.md) as man(7) roff, for build.rs. The sources are the one
//! copy of the manual: GitHub shows them as they are, and the package installs what this makes
//! of them.
//!
//! Why a converter of our own: the one maintained Markdown-to-man crate, mandown 1.1, calls its
//! output "very rough" and it is: code spans keep their backticks, tables come out as lines of
//! `|`, definition terms get no `.TP`, `.TH` has no date or source, and its pages are not lint
//! clean. pulldown-cmark (a well-kept parser) reads the Markdown; this file only writes roff, for
//! the subset the sources use:
//!
//! - `# TITLE` is `.SH`, `## title` is `.SS`, `### title` a bold paragraph;
//! - paragraphs, bullet and numbered lists (one level), fenced or indented code as `.nf`;
//! - a table is a list of `.TP` items: the first cell is the tag, the middle cells follow as
//!   `Header: cell` lines, the last cell is the text;
//! - `code` and **strong** are bold, *emphasis* italic; a link is its text, followed by the
//!   address in parentheses when that is a web address;
//! - HTML comments are dropped; non-ASCII characters become `\[uXXXX]`.
//!
//! Output lines are at most 80 bytes in fill mode, and no paragraph macro is left empty or put
//! right after a heading, so that `mandoc -T lint` and `groff -ww` have nothing to say.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// The page header: `.TH NAME SECTION DATE SOURCE MANUAL`.
pub struct Header<'a> {
    pub name: &'a str,
    pub section: &'a str,
    pub date: &'a str,
    pub source: &'a str,
    pub manual: &'a str,
}

/// Escapes text for roff (fill or no-fill mode; line starts are handled when lines are cut).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '\u{a0}' => out.push_str("\\ "),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("\\[u{:04X}]", c as u32)),
        }
    }
    out
}

/// A line of roff text that starts with `.` or `'` would be a request: `\&` in front.
fn guard(line: &str) -> String {
    if line.starts_with('.') || line.starts_with('\'') {
        format!("\\&{line}")
    } else {
        line.to_string()
    }
}

/// Fill-mode text cut into lines of at most `width` bytes at spaces (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, hard) in text.split('\n').enumerate() {
        if i > 0 {
            lines.push(".br".to_string());
        }
        let mut line = String::new();
        for word in hard.split(' ').filter(|w| !w.is_empty()) {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(guard(&line));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            lines.push(guard(&line));
        }
    }
    lines
}

#[derive(Default)]
struct Writer {
    out: String,
    /// Inline text of the block being read (escaped, fonts as escapes).
    text: String,
    /// The paragraph macro for the next text, emitted only when text comes.
    pending: Option<String>,
    /// The last thing written was a heading (a paragraph macro after it is redundant).
    after_heading: bool,
    /// Inside a list: (ordered next number or None, first paragraph of the item done).
    list: Option<(Option<u64>, bool)>,
    /// Inside a table: header cells, cells of the row being read, whether in the header.
    table: Option<(Vec<String>, Vec<String>, bool)>,
    /// Inside a code block: its lines so far.
    code: Option<String>,
    /// Inside a link: its address.
    link: Vec<String>,
    /// Level-3 heading being read.
    minor_heading: bool,
}

impl Writer {
    fn macro_line(&mut self, m: &str) {
        self.out.push_str(m);
        self.out.push('\n');
    }

    /// Writes the pending paragraph macro and the collected inline text.
    fn flush_text(&mut self) {
        let text = std::mem::take(&mut self.text);
        let lines = wrap(&text, 80);
        if lines.is_empty() {
            return;
        }
        if let Some(p) = self.pending.take() {
            if !(self.after_heading && p == ".PP") {
                self.macro_line(&p);
            }
        }
        self.after_heading = false;
        for l in lines {
            self.out.push_str(&l);
            self.out.push('\n');
        }
    }

    fn paragraph_start(&mut self) {
        self.pending = Some(match &mut self.list {
            None => ".PP".into(),
            Some((_, first_done)) if *first_done => ".IP \"\" 4".into(),
            Some((number, first_done)) => {
                *first_done = true;
                match number {
                    Some(n) => {
                        let m = format!(".IP {n}. 4");
                        *n += 1;
                        m
                    }
                    None => ".IP \\(bu 4".into(),
                }
            }
        });
    }

    fn event(&mut self, ev: Event) {
        if let Some(code) = &mut self.code {
            match ev {
                Event::Text(t) => code.push_str(&t),
                Event::End(TagEnd::CodeBlock) => {
                    let code = self.code.take().unwrap_or_default();
                    let p = if self.list.is_some() {
                        ".IP \"\" 4"
                    } else {
                        ".PP"
                    };
                    if !(self.after_heading && p == ".PP") {
                        self.macro_line(p);
                    }
                    self.pending = None;
                    self.after_heading = false;
                    self.macro_line(".RS 4");
                    self.macro_line(".nf");
                    for line in code.trim_end_matches('\n').split('\n') {
                        let l = guard(&escape(line));
                        self.out.push_str(if l.is_empty() { "\\&" } else { &l });
                        self.out.push('\n');
                    }
                    self.macro_line(".fi");
                    self.macro_line(".RE");
                }
                _ => {}
            }
            return;
        }
        match ev {
            Event::Start(Tag::Heading { level, .. }) => {
                self.flush_text();
                match level {
                    HeadingLevel::H1 | HeadingLevel::H2 => {}
                    _ => {
                        self.minor_heading = true;
                        self.paragraph_start();
                        self.text.push_str("\\fB");
                    }
                }
            }
            Event::End(TagEnd::Heading(level)) => {
                let title = std::mem::take(&mut self.text);
                match level {
                    HeadingLevel::H1 | HeadingLevel::H2 => {
                        let m = if level == HeadingLevel::H1 {
                            ".SH"
                        } else {
                            ".SS"
                        };
                        let title = title.replace('"', "\\(dq");
                        self.macro_line(&format!("{m} \"{title}\""));
                        self.pending = None;
                        self.after_heading = true;
                    }
                    _ => {
                        self.text = title;
                        self.text.push_str("\\fR");
                        self.minor_heading = false;
                        self.flush_text();
                    }
                }
            }
            Event::Start(Tag::Paragraph) if self.table.is_none() => self.paragraph_start(),
            Event::End(TagEnd::Paragraph) => self.flush_text(),
            Event::Start(Tag::List(first)) => {
                self.flush_text();
                self.list = Some((first, false));
            }
            Event::End(TagEnd::List(_)) => {
                self.flush_text();
                self.list = None;
                self.pending = Some(".PP".into());
            }
            Event::Start(Tag::Item) => {
                self.flush_text();
                if let Some((_, first_done)) = &mut self.list {
                    *first_done = false;
                }
                // Tight lists have no Paragraph events: the item is its paragraph.
                self.paragraph_start();
            }
            Event::End(TagEnd::Item) => self.flush_text(),
            Event::Start(Tag::CodeBlock(_)) => {
                self.flush_text();
                self.code = Some(String::new());
            }
            Event::Start(Tag::Table(_)) => {
                self.flush_text();
                self.table = Some((Vec::new(), Vec::new(), false));
            }
            Event::Start(Tag::TableHead) => {
                if let Some(t) = &mut self.table {
                    t.2 = true;
                }
            }
            Event::End(TagEnd::TableHead) => {
                if let Some(t) = &mut self.table {
                    t.0 = std::mem::take(&mut t.1);
                    t.2 = false;
                }
            }
            Event::End(TagEnd::TableCell) => {
                let cell = std::mem::take(&mut self.text);
                if let Some(t) = &mut self.table {
                    t.1.push(cell.trim().to_string());
                }
            }
            Event::End(TagEnd::TableRow) => {
                let Some((head, row, _)) = &mut self.table else {
                    return;
                };
                let row = std::mem::take(row);
                let head = head.clone();
                if row.is_empty() {
                    return;
                }
                self.macro_line(".TP");
                self.after_heading = false;
                self.pending = None;
                self.text = row[0].clone();
                self.flush_text();
                let mut body = String::new();
                let last = row.len() - 1;
                for (i, cell) in row.iter().enumerate().skip(1) {
                    if i < last {
                        let h = head.get(i).map(String::as_str).unwrap_or("");
                        if cell.is_empty() {
                            continue;
                        }
                        body.push_str(&format!("\\fI{h}:\\fR {cell}\n"));
                    } else {
                        body.push_str(cell);
                    }
                }
                let lines: Vec<String> = body
                    .trim_end_matches('\n')
                    .split('\n')
                    .flat_map(|l| {
                        let mut w = wrap(l, 80);
                        w.push(".br".into());
                        w
                    })
                    .collect();
                let n = lines.len().saturating_sub(1);
                for l in &lines[..n] {
                    self.macro_line(l);
                }
            }
            Event::End(TagEnd::Table) => {
                self.table = None;
                self.pending = Some(".PP".into());
            }
            Event::Start(Tag::Emphasis) => self.text.push_str("\\fI"),
            Event::End(TagEnd::Emphasis) => self.text.push_str("\\fR"),
            Event::Start(Tag::Strong) => self.text.push_str("\\fB"),
            Event::End(TagEnd::Strong) => {
                self.text
                    .push_str(if self.minor_heading { "" } else { "\\fR" })
            }
            Event::Code(c) => {
                if self.minor_heading {
                    self.text.push_str(&escape(&c));
                } else {
                    self.text.push_str(&format!("\\fB{}\\fR", escape(&c)));
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => self.link.push(dest_url.to_string()),
            Event::End(TagEnd::Link) => {
                let url = self.link.pop().unwrap_or_default();
                if url.starts_with("http://") || url.starts_with("https://") {
                    self.text.push_str(&format!(" ({})", escape(&url)));
                }
            }
            Event::Text(t) => self.text.push_str(&escape(&t).replace('\n', " ")),
            Event::SoftBreak => self.text.push(' '),
            Event::HardBreak => self.text.push('\n'),
            Event::Html(_) | Event::InlineHtml(_) | Event::Rule => {}
            _ => {}
        }
    }
}

/// The roff page for one Markdown source.
pub fn page(markdown: &str, h: &Header) -> String {
    let mut w = Writer::default();
    w.macro_line(&format!(
        ".TH \"{}\" \"{}\" \"{}\" \"{}\" \"{}\"",
        h.name, h.section, h.date, h.source, h.manual
    ));
    // No hyphenation: paths, options and field names must stay whole to be copied.
    w.macro_line(".nh");
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES);
    for ev in parser {
        w.event(ev);
    }
    w.flush_text();
    w.out
}
