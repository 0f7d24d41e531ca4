//! Fuzzes the configuration loader: RON parsing, the position scanner, validation and
//! planning must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wg_exec::fuzzing::load_and_plan(data);
});
