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

/// The journal target's corpus (fuzz/corpus/journal, grown by `cargo fuzz run journal`) through
/// the journal and record readers: no input may panic, and the seeds still mean what they say.
#[test]
fn the_journal_fuzz_corpus_reads_without_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/journal");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        wg_exec::fuzzing::journal_and_record(&data);
        n += 1;
    }
    assert!(n >= 7, "only {n} inputs in {}", dir.display());
    let seed = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    // A journal wg-exec wrote passes the check; the planted one of issue 19 does not.
    let j = wg_exec::journal::parse(&seed("seed-journal-all-variants.ron")).unwrap();
    wg_exec::journal::vet::vet(&j, "wg0").unwrap();
    let j = wg_exec::journal::parse(&seed("seed-journal-planted.ron")).unwrap();
    assert!(wg_exec::journal::vet::vet(&j, "wg0").is_err());
    // The record as an older wg-exec wrote it (converted on reading), and as this one writes it.
    let old =
        wg_exec::journal::applied::legacy::parse(seed("seed-record-full.ron").as_bytes()).unwrap();
    let new = wg_exec::journal::applied::parse(seed("seed-record-full.json").as_bytes()).unwrap();
    assert_eq!(new, old);
}
