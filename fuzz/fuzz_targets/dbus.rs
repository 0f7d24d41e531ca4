//! Fuzzes the D-Bus message reader (header fields, signatures, the body): any bytes give values
//! or an error, never a panic, an endless loop or unbounded recursion.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wg_exec::fuzzing::dbus_message(data);
});
