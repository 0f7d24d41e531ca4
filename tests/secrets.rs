//! Secrets at rest: a configuration holding a key inline is warned about when its group may
//! write it or others may read it (`check` and `up`, as key files are), and `convert` writes
//! a new 0600 file with `-o` whatever the umask (or warns when the shell's redirect is shared).

mod support;

use std::os::unix::fs::PermissionsExt;
use support::*;

fn conf_with_inline_key(dir: &std::path::Path, name: &str, mode: u32) -> std::path::PathBuf {
    let key = must("wg genkey");
    let peer = must("wg genkey | wg pubkey");
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(
        &path,
        format!(
            "[Interface]\nAddress = 192.0.2.1/24\nPrivateKey = {}\n\n[Peer]\nPublicKey = {}\nAllowedIPs = 192.0.2.2/32\n",
            key.trim(),
            peer.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn tools() -> bool {
    if which("wg").is_some() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "wg is missing"
    );
    eprintln!("SKIPPED (not counted as passed): wg is missing");
    false
}

#[test]
fn a_shared_configuration_with_an_inline_key_is_warned_about() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (mode, said) in [
        (0o644, Some("is readable by others (mode 0644)")),
        (0o620, Some("is writable by its group (mode 0620)")),
        (0o640, None),
        (0o600, None),
    ] {
        let conf = conf_with_inline_key(dir.path(), "wgs0", mode);
        let out = wg_exec("", &format!("check wgs0 --config {}", conf.display()));
        let log = text(&out.stderr);
        assert!(out.status.success(), "{log}");
        match said {
            Some(s) => assert!(
                log.contains(&format!(
                    "wgs0.conf:3:14: PrivateKey: configuration {} {s}; chmod 600 it",
                    conf.display()
                )) && log.contains("holds a key inline"),
                "mode {mode:o}: {log}"
            ),
            None => assert!(!log.contains("configuration"), "mode {mode:o}: {log}"),
        }
    }
}

#[test]
fn convert_writes_a_new_private_file() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_with_inline_key(dir.path(), "wgs1", 0o600);
    let out_path = dir.path().join("wgs1.ron");
    let out = sh(&format!(
        "umask 022; {} convert {} -o {}",
        wg_exec_bin(),
        conf.display(),
        out_path.display()
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(&out_path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::read_to_string(&out_path)
        .unwrap()
        .contains("private_key:"));
    // Never over an existing file, nor through a symbolic link.
    let again = wg_exec(
        "",
        &format!("convert {} -o {}", conf.display(), out_path.display()),
    );
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains(&format!(
            "cannot create {}: File exists",
            out_path.display()
        )),
        "{}",
        text(&again.stderr)
    );
    let target = dir.path().join("elsewhere");
    let link = dir.path().join("link.ron");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let linked = wg_exec(
        "",
        &format!("convert {} -o {}", conf.display(), link.display()),
    );
    assert_eq!(linked.status.code(), Some(1));
    assert!(!target.exists(), "written through a symbolic link");
    // On stdout into a file the shell made 0644: said.
    let redirect = dir.path().join("shell.ron");
    let out = sh(&format!(
        "umask 022; {} convert {} > {}",
        wg_exec_bin(),
        conf.display(),
        redirect.display()
    ));
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains(
            "the output holds inline keys and goes to a file of mode 0644: chmod 600 it, or use -o FILE"
        ),
        "{}",
        text(&out.stderr)
    );
}
