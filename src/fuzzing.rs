//! Entry points shared by the fuzz targets (fuzz/fuzz_targets/) and the tests that replay their
//! corpora (tests/fuzz_corpus.rs): each takes any bytes and must never panic.

use crate::config::{self, RouteTables};
use std::path::Path;

/// Parses bytes as a configuration and, when valid, builds both plans and prints them.
pub fn load_and_plan(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tables = RouteTables::builtin();
    if let Ok((cfg, _warnings)) = config::parse("wg0", Path::new("fuzz.ron"), text, &tables) {
        let _ = crate::executor::print(&crate::plan::up(&cfg));
        let _ = crate::executor::print(&crate::plan::down_from_config(&cfg, false));
    }
}

/// Parses bytes as a journal and as a record of what was applied, as `down`, `status` and
/// `reload` read them (bounded by [`crate::state::MAX_FILE`]); a journal that passes the check
/// of its records gives its down plan, printed, and its accessors are exercised.
pub fn journal_and_record(data: &[u8]) {
    if data.len() as u64 > crate::state::MAX_FILE {
        return;
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(j) = crate::journal::parse(text) {
            let _ = j.links();
            let _ = j.dns();
            let _ = j.full_tunnel_table();
            if crate::journal::vet::vet(&j, "wg0").is_ok() {
                let _ = crate::executor::print(&crate::plan::down_from_journal(&j, true));
            }
        }
    }
    // The record as this wg-exec writes it, and as an older one did (converted on reading).
    let records = [
        crate::journal::applied::parse(data),
        crate::journal::applied::legacy::parse(data),
    ];
    for a in records.into_iter().flatten() {
        let _ = a.route_list();
        let _ = a.device_fwmark();
        let _ = a.union(&a);
        let _ = a.full_tunnel.as_ref().map(|s| s.to_string());
        let _ = a.dns.entries();
    }
}

// --- Replies from peers (issue 19, finding 5): the UAPI answer and the D-Bus reader. ---

/// Reads bytes as a userspace implementation's answer to `get=1` (what precedes `errno=`);
/// true when they read as a device.
pub fn uapi_get_answer(data: &[u8]) -> bool {
    crate::linux::uapi::parse_get(data).is_ok()
}

/// Reads bytes as one D-Bus message from the bus (header fields, then the body by its
/// signature); bytes beyond the first message's length are ignored. True when they read as a
/// message.
pub fn dbus_message(data: &[u8]) -> bool {
    crate::linux::dbus::read_message(data).is_ok()
}
