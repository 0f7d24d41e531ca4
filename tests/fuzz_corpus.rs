//! Replays the fuzzer's corpus (fuzz/corpus/config, grown by `cargo fuzz run config`) through
//! the configuration loader: no input may panic.

#[test]
fn the_fuzz_corpus_loads_without_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        wg_exec::fuzzing::load_and_plan(&data);
        n += 1;
    }
    assert!(n >= 40, "only {n} inputs in {}", dir.display());
}
