//! Where each value of a RON file starts, by field path ("peers[2].allowed_ips[1]").
//!
//! ron reports line:column for syntax and type errors, but serde gives no spans for values that
//! parse fine and fail validation later (a CIDR with host bits set, a duplicate key). This small
//! scanner walks the same text again and records the position of every value, so that every
//! validation error can name file, line:column and field. It only has to be right for files ron
//! already accepted; on anything unexpected it stops and the errors fall back to the nearest
//! recorded parent.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str,
    Other,
    Open(char),
    Close(char),
    Colon,
    Comma,
}

struct Cursor {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
}

impl Cursor {
    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek(0) {
            self.i += 1;
            if c == '\n' {
                self.line += 1;
                self.col = 1;
            } else {
                self.col += 1;
            }
        }
    }

    fn bump_while(&mut self, f: impl Fn(char) -> bool) {
        while self.peek(0).is_some_and(&f) {
            self.bump();
        }
    }
}

fn tokenize(src: &str) -> Vec<(Tok, Pos)> {
    let mut s = Cursor {
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    while let Some(c) = s.peek(0) {
        let pos = Pos {
            line: s.line,
            col: s.col,
        };
        let next = s.peek(1);
        if c.is_whitespace() {
            s.bump();
        } else if c == '/' && next == Some('/') {
            s.bump_while(|c| c != '\n');
        } else if c == '/' && next == Some('*') {
            // RON block comments nest.
            let mut depth = 0usize;
            while let Some(c) = s.peek(0) {
                if c == '/' && s.peek(1) == Some('*') {
                    depth += 1;
                    s.bump();
                    s.bump();
                } else if c == '*' && s.peek(1) == Some('/') {
                    depth -= 1;
                    s.bump();
                    s.bump();
                    if depth == 0 {
                        break;
                    }
                } else {
                    s.bump();
                }
            }
        } else if c == '#' {
            // `#![enable(...)]` attributes: skip to the closing bracket.
            s.bump_while(|c| c != ']');
            s.bump();
        } else if c == '"' {
            s.bump();
            while let Some(c) = s.peek(0) {
                if c == '"' {
                    break;
                }
                if c == '\\' {
                    s.bump();
                }
                s.bump();
            }
            s.bump();
            out.push((Tok::Str, pos));
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) {
            // Raw string r##"…"##.
            s.bump();
            let mut hashes = 0;
            while s.peek(0) == Some('#') {
                hashes += 1;
                s.bump();
            }
            s.bump();
            while let Some(c) = s.peek(0) {
                if c == '"' && (1..=hashes).all(|k| s.peek(k) == Some('#')) {
                    for _ in 0..=hashes {
                        s.bump();
                    }
                    break;
                }
                s.bump();
            }
            out.push((Tok::Str, pos));
        } else if c.is_alphabetic() || c == '_' {
            let begin = s.i;
            s.bump_while(|c| c.is_alphanumeric() || c == '_');
            let word: String = s.chars[begin..s.i].iter().collect();
            out.push((Tok::Ident(word), pos));
        } else if matches!(c, '(' | '[' | '{') {
            s.bump();
            out.push((Tok::Open(c), pos));
        } else if matches!(c, ')' | ']' | '}') {
            s.bump();
            out.push((Tok::Close(c), pos));
        } else if c == ':' {
            s.bump();
            out.push((Tok::Colon, pos));
        } else if c == ',' {
            s.bump();
            out.push((Tok::Comma, pos));
        } else {
            // Numbers, signs, character literals: one token up to a delimiter.
            s.bump();
            s.bump_while(|c| !c.is_whitespace() && !matches!(c, ',' | ')' | ']' | '}' | ':'));
            out.push((Tok::Other, pos));
        }
    }
    out
}

/// Positions of values by path. `get("peers[1].endpoint")` is where that value starts.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    map: HashMap<String, Pos>,
}

impl Locations {
    pub fn scan(src: &str) -> Locations {
        let toks = tokenize(src);
        let mut loc = Locations::default();
        let mut i = 0;
        loc.value(&toks, &mut i, String::new());
        loc
    }

    /// Where `path` starts, else its nearest recorded parent, else 1:1.
    pub fn get(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.map.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => return self.map.get("").copied().unwrap_or(Pos { line: 1, col: 1 }),
            }
        }
    }

    fn record(&mut self, path: &str, pos: Pos) {
        self.map.entry(path.to_string()).or_insert(pos);
    }

    /// Parses one value at `toks[*i]`, recording positions; returns false when lost.
    fn value(&mut self, toks: &[(Tok, Pos)], i: &mut usize, path: String) -> bool {
        let Some((tok, pos)) = toks.get(*i).cloned() else {
            return false;
        };
        self.record(&path, pos);
        match tok {
            Tok::Ident(name) => {
                *i += 1;
                if toks.get(*i).map(|t| &t.0) == Some(&Tok::Open('(')) {
                    if name == "Some" {
                        *i += 1;
                        let ok = self.value(toks, i, path);
                        return ok && self.expect_close(toks, i, ')');
                    }
                    return self.parens(toks, i, &path);
                }
                true
            }
            Tok::Open('(') => self.parens(toks, i, &path),
            Tok::Open(open) => {
                let close = if open == '[' { ']' } else { '}' };
                *i += 1;
                let mut n = 0;
                loop {
                    match toks.get(*i).map(|t| &t.0) {
                        Some(Tok::Close(c)) if *c == close => {
                            *i += 1;
                            return true;
                        }
                        Some(Tok::Comma) => *i += 1,
                        Some(_) => {
                            if !self.value(toks, i, format!("{path}[{n}]")) {
                                return false;
                            }
                            // Map entries: `key: value`.
                            if toks.get(*i).map(|t| &t.0) == Some(&Tok::Colon) {
                                *i += 1;
                                if !self.value(toks, i, format!("{path}[{n}]")) {
                                    return false;
                                }
                            }
                            n += 1;
                        }
                        None => return false,
                    }
                }
            }
            Tok::Str | Tok::Other => {
                *i += 1;
                true
            }
            Tok::Close(_) | Tok::Colon | Tok::Comma => false,
        }
    }

    /// A parenthesised struct body `(field: value, …)` or tuple `(a, b)`; `*i` is at '('.
    fn parens(&mut self, toks: &[(Tok, Pos)], i: &mut usize, path: &str) -> bool {
        *i += 1;
        let mut n = 0;
        loop {
            match (toks.get(*i).map(|t| &t.0), toks.get(*i + 1).map(|t| &t.0)) {
                (Some(Tok::Close(')')), _) => {
                    *i += 1;
                    return true;
                }
                (Some(Tok::Comma), _) => *i += 1,
                (Some(Tok::Ident(field)), Some(Tok::Colon)) => {
                    let field_path = match path.is_empty() {
                        true => field.clone(),
                        false => format!("{path}.{field}"),
                    };
                    self.record(&format!("{field_path}#name"), toks[*i].1);
                    *i += 2;
                    if !self.value(toks, i, field_path) {
                        return false;
                    }
                }
                (Some(_), _) => {
                    if !self.value(toks, i, format!("{path}[{n}]")) {
                        return false;
                    }
                    n += 1;
                }
                (None, _) => return false,
            }
        }
    }

    fn expect_close(&mut self, toks: &[(Tok, Pos)], i: &mut usize, c: char) -> bool {
        if toks.get(*i).map(|t| &t.0) == Some(&Tok::Close(c)) {
            *i += 1;
            true
        } else {
            false
        }
    }
}

/// A file's text and, scanned on first use, where its values are: most loads have no error or
/// warning to place, and then the scan (the costlier half of loading 10,000 peers) never runs.
/// For a wg-quick .conf file, the reader records the positions as it goes, and the names its
/// keys have there.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    text: std::sync::Arc<str>,
    scanned: std::sync::OnceLock<Locations>,
    /// Display names by path ("peers[0].allowed_ips" → "[Peer] 1 AllowedIPs") for a .conf.
    names: Option<std::sync::Arc<HashMap<String, String>>>,
}

impl SourceMap {
    pub fn new(text: &str) -> SourceMap {
        SourceMap {
            text: text.into(),
            scanned: std::sync::OnceLock::new(),
            names: None,
        }
    }

    /// Positions and names known in advance (a .conf file).
    pub fn fixed(positions: HashMap<String, Pos>, names: HashMap<String, String>) -> SourceMap {
        let scanned = std::sync::OnceLock::new();
        let _ = scanned.set(Locations { map: positions });
        SourceMap {
            text: "".into(),
            scanned,
            names: Some(std::sync::Arc::new(names)),
        }
    }

    fn locations(&self) -> &Locations {
        self.scanned.get_or_init(|| Locations::scan(&self.text))
    }

    /// Where `path` starts (see [`Locations::get`]).
    pub fn get(&self, path: &str) -> Pos {
        self.locations().get(path)
    }

    /// How messages name the field at `path`: the path itself for RON; for a .conf, its key as
    /// written there (or its nearest parent's).
    pub fn display(&self, path: &str) -> String {
        let Some(names) = &self.names else {
            return path.to_string();
        };
        let mut p = path;
        loop {
            if let Some(n) = names.get(p) {
                return n.clone();
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => return path.to_string(),
            }
        }
    }

    pub fn path_at(&self, pos: Pos) -> Option<String> {
        self.locations().path_at(pos)
    }
}

impl Locations {
    /// The path of the innermost value that starts at or before `pos` (for ron's own errors,
    /// which carry a position but no field name).
    pub fn path_at(&self, pos: Pos) -> Option<String> {
        self.map
            .iter()
            .filter(|(k, p)| !k.ends_with("#name") && (p.line, p.col) <= (pos.line, pos.col))
            .max_by_key(|(k, p)| (p.line, p.col, k.len()))
            .map(|(k, _)| k.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values() {
        let src = "// comment\nInterface(\n  mtu: Some(1420),\n  peers: [\n    Peer(allowed_ips: [\"a\", \"b\"]),\n    (endpoint: \"h:1\", /* x */ persistent_keepalive: 25),\n  ],\n)\n";
        let l = Locations::scan(src);
        assert_eq!(l.get("mtu"), Pos { line: 3, col: 8 });
        assert_eq!(l.get("peers[0].allowed_ips[1]"), Pos { line: 5, col: 29 });
        assert_eq!(
            l.get("peers[1].persistent_keepalive"),
            Pos { line: 6, col: 53 }
        );
        assert_eq!(l.get("peers[1].endpoint"), Pos { line: 6, col: 16 });
        // Not present: the nearest parent.
        assert_eq!(l.get("peers[1].name"), Pos { line: 6, col: 5 });
        assert_eq!(l.get("peers[1].name#name"), Pos { line: 6, col: 5 });
    }
}
