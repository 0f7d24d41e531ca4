//! Fuzzes the reader of a userspace implementation's `get=1` answer (wireguard-go, boringtun):
//! any bytes give a device or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wg_exec::fuzzing::uapi_get_answer(data);
});
