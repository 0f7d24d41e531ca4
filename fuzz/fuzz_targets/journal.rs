//! Fuzzes the reading of the state directory's files: a journal (its format, the check of its
//! records against what wg-exec writes, the down plan of one that passes) and a record of what
//! was applied must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wg_exec::fuzzing::journal_and_record(data);
});
