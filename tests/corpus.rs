//! The corpus of bad configurations (tests/corpus/bad): each `up` exits 2 with a message naming
//! the file, line:column and field, and nothing on the system changes.

mod support;
use std::path::Path;
use support::*;

#[test]
fn every_bad_configuration_exits_2_and_changes_nothing() {
    if !real_environment("corpus") {
        return;
    }
    let ns = Netns::new("c");
    let keys = Keys::new();
    let (key, _) = keys.private("k");
    let before = ns.snapshot();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 40, "{} cases", files.len());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let field = text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("// expect field:")
            .trim();
        let want = text
            .lines()
            .nth(1)
            .unwrap()
            .trim_start_matches("// expect text:")
            .trim();
        let body = text
            .replace("@KEYFILE@", &key.display().to_string())
            .replace("@NS@", &ns.name);
        let path = keys.write(f.file_name().unwrap().to_str().unwrap(), &body);
        let ia = iface("c");
        let _s = SocketGuard(ia.clone());
        let out = wg_exec("", &format!("up {ia} --config {}", path.display()));
        let err = text_of(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", f.display());
        let first = err
            .lines()
            .find(|l| l.starts_with("wg-exec: error: "))
            .unwrap_or_default();
        let prefix = format!("wg-exec: error: {}:", path.display());
        assert!(first.starts_with(&prefix), "{}: {first}", f.display());
        // line:column, then the field (when the problem has one), then the reason.
        let rest = &first[prefix.len()..];
        let mut parts = rest.splitn(3, ':');
        let line: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{first}"));
        let col: usize = parts
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{first}"));
        assert!(line >= 1 && col >= 1);
        let message = parts.next().unwrap().trim_start();
        if !field.is_empty() {
            assert!(
                message.starts_with(&format!("{field}: ")),
                "{}: {first}",
                f.display()
            );
        }
        assert!(message.contains(want), "{}: {first}", f.display());
        assert!(!ns.has_link(&ia) && !socket_exists(&ia), "{}", f.display());
        assert!(!Path::new(&journal_path(&ia)).exists());
    }
    assert_eq!(ns.snapshot(), before);
}

#[test]
fn an_over_long_interface_name_exits_2() {
    if !real_environment("long_name") {
        return;
    }
    let keys = Keys::new();
    let (key, _) = keys.private("k");
    let cfg = keys.write(
        "x.ron",
        &format!("Interface(private_key_file: \"{}\")", key.display()),
    );
    let out = wg_exec(
        "",
        &format!("up wg-exec-name-too-long --config {}", cfg.display()),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text_of(&out.stderr)
        .contains("interface name (command line): `wg-exec-name-too-long` is 21 bytes long"));
}

fn text_of(b: &[u8]) -> String {
    text(b)
}
