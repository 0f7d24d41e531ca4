//! The record of what was applied is written only when it changes: a reload that changes what
//! the record does not hold (a peer's keepalive) leaves the record file as it was (the same
//! file, not rewritten) and writes no next record; one that changes an endpoint replaces it.
//! Observed with `wg show dump` and the file's inode, never with wg-exec alone.

mod support;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use support::*;

const PEER: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

fn config(keys: &Keys, key: &Path, keepalive: u16, endpoint: &str) -> std::path::PathBuf {
    keys.write(
        "wg.ron",
        &format!(
            "Interface(private_key_file: \"{}\", ips: [\"198.18.0.1/24\"], peers: [
               Peer(public_key: \"{PEER}\", allowed_ips: [\"198.51.100.0/24\"],
                    endpoint: \"{endpoint}\", persistent_keepalive: {keepalive})])",
            key.display()
        ),
    )
}

#[test]
fn a_reload_rewrites_the_record_only_when_the_record_changes() {
    if !real_environment("record_writes") {
        return;
    }
    let ns = Netns::new("rw");
    let keys = Keys::new();
    let (key, _) = keys.private("a");
    let name = iface("rw");
    let _socket = SocketGuard(name.clone());
    let run = |args: &str| wg_exec(&format!("ip netns exec {}", ns.name), args);
    let cfg = config(&keys, &key, 25, "203.0.113.2:51820");
    ok(run(&format!("up {name} --config {}", cfg.display())));
    let dir = Path::new(&journal_path(&name))
        .parent()
        .unwrap()
        .to_path_buf();
    let record = dir.join(format!("{name}.applied.json"));
    let next = dir.join(format!("{name}.applied-next.json"));
    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let before = inode(&record);
    let text = std::fs::read_to_string(&record).unwrap();

    // The keepalive is not in the record: the device changes, the record file does not.
    config(&keys, &key, 10, "203.0.113.2:51820");
    ok(run(&format!("reload {name} --config {}", cfg.display())));
    let dump = ns.wg_dump(&name);
    assert_eq!(dump[1][7], "10", "{dump:?}");
    assert_eq!(inode(&record), before, "the record was rewritten");
    assert_eq!(std::fs::read_to_string(&record).unwrap(), text);
    assert!(!next.exists());

    // The endpoint is: the record is replaced, and says the new one.
    config(&keys, &key, 10, "203.0.113.9:51820");
    ok(run(&format!("reload {name} --config {}", cfg.display())));
    let dump = ns.wg_dump(&name);
    assert_eq!(dump[1][2], "203.0.113.9:51820", "{dump:?}");
    assert_ne!(inode(&record), before, "the record was not replaced");
    let now = wg_exec::journal::applied::load(&record).unwrap().unwrap();
    assert_eq!(
        now.endpoints.values().next().map(|e| e.to_string()),
        Some("203.0.113.9:51820".to_string())
    );
    assert!(!next.exists());
    ok(run(&format!("down {name} --config {}", cfg.display())));
    assert!(!record.exists());
}
