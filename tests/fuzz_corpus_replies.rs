//! Replays the corpora of the reply fuzzers (fuzz/corpus/uapi and fuzz/corpus/dbus, grown by
//! `cargo fuzz run uapi` and `cargo fuzz run dbus`): no input may panic, and the corpora still
//! reach the readers' success paths (well-formed answers from wireguard-go, boringtun and the
//! bus are among them).

fn replay(name: &str, read: fn(&[u8]) -> bool) -> (usize, usize) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let (mut n, mut ok) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        ok += read(&data) as usize;
        n += 1;
    }
    assert!(n >= 10, "only {n} inputs in {}", dir.display());
    eprintln!("{name}: {ok} of {n} inputs read");
    (n, ok)
}

#[test]
fn the_uapi_corpus_reads_without_panics() {
    let (n, ok) = replay("uapi", wg_exec::fuzzing::uapi_get_answer);
    assert!(ok >= 3 && ok < n, "{ok} of {n} inputs read as a device");
}

#[test]
fn the_dbus_corpus_reads_without_panics() {
    let (n, ok) = replay("dbus", wg_exec::fuzzing::dbus_message);
    assert!(ok >= 5 && ok < n, "{ok} of {n} inputs read as a message");
}
