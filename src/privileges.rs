//! Capabilities: check up front that the plan can run, and drop everything it does not need
//! (bounding set first, then effective, permitted and inheritable, then ambient, as youki does)
//! before the first step. Children get their own sets (src/linux/child.rs): the userspace
//! daemon CAP_NET_ADMIN (and CAP_NET_BIND_SERVICE for a port below 1024) whatever wg-exec
//! keeps; hooks what the unit granted wg-exec.

use caps::{CapSet, Capability, CapsHashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use wg_exec_steps::Needs;
use wg_exec_steps::Netns;

pub struct Kept {
    /// False when CAP_SYS_MODULE is missing: the modprobe step is skipped.
    pub modprobe: bool,
}

/// The capabilities a plan's needs require. `elsewhere` tells whether a namespace is another
/// than the current one (entering the current one is never done, so it needs nothing).
pub fn required(needs: &Needs, elsewhere: impl Fn(&Netns) -> bool) -> Vec<Capability> {
    let mut required = vec![Capability::CAP_NET_ADMIN];
    if needs.namespaces.iter().any(elsewhere) {
        required.push(Capability::CAP_SYS_ADMIN);
    }
    if needs.low_port {
        required.push(Capability::CAP_NET_BIND_SERVICE);
    }
    required
}

/// Whether the plan being run listens on a port below 1024 (set by the check).
static LOW_PORT: AtomicBool = AtomicBool::new(false);

/// What the userspace daemon (which parses packets from the Internet) gets: CAP_NET_ADMIN for
/// its TUN device, and CAP_NET_BIND_SERVICE when the plan listens on a port below 1024.
pub fn daemon_caps() -> Vec<Capability> {
    let mut caps = vec![Capability::CAP_NET_ADMIN];
    if LOW_PORT.load(Ordering::Relaxed) {
        caps.push(Capability::CAP_NET_BIND_SERVICE);
    }
    caps
}

/// Gives `cap` up for good (effective, permitted, and the bounding set where CAP_SETPCAP
/// allows): CAP_SYS_MODULE once the modprobe step is done. Not when hooks are configured:
/// they run with what the unit granted, and the later ones may need it.
pub fn give_up(cap: Capability) {
    if KEEPS_ALL.load(Ordering::Relaxed) {
        return;
    }
    if caps::raise(None, CapSet::Effective, Capability::CAP_SETPCAP).is_ok() {
        let _ = caps::drop(None, CapSet::Bounding, cap);
        let _ = caps::drop(None, CapSet::Effective, Capability::CAP_SETPCAP);
    }
    let _ = caps::drop(None, CapSet::Effective, cap);
    match caps::drop(None, CapSet::Permitted, cap) {
        Ok(()) => log::debug!("{cap} given up"),
        Err(e) => log::warn!("cannot give up {cap}: {e}"),
    }
}

/// Set when wg-exec keeps everything it was given (hooks are configured).
static KEEPS_ALL: AtomicBool = AtomicBool::new(false);

fn name(c: Capability) -> String {
    c.to_string()
}

/// Fails (for exit 2) naming what is missing and how to grant it; otherwise drops what is not
/// needed.
/// `current` tells whether a namespace is the one wg-exec runs in (entering it needs nothing).
pub fn check_and_drop(needs: &Needs, current: impl Fn(&Netns) -> bool) -> Result<Kept, String> {
    check_and_drop_keeping(needs, &[], current)
}

/// [`check_and_drop`], also keeping those of `extra` that wg-exec has (not required).
pub fn check_and_drop_keeping(
    needs: &Needs,
    extra: &[Capability],
    current: impl Fn(&Netns) -> bool,
) -> Result<Kept, String> {
    let effective = caps::read(None, CapSet::Effective)
        .map_err(|e| format!("cannot read capabilities: {e}"))?;
    let required = required(needs, |ns| !current(ns));
    let missing: Vec<String> = required
        .iter()
        .filter(|c| !effective.contains(c))
        .map(|c| name(*c))
        .collect();
    if !missing.is_empty() {
        // The line to copy grants everything the plan uses, CAP_SYS_MODULE for its modprobe too.
        let mut all: Vec<String> = required.iter().map(|c| name(*c)).collect();
        if needs.module {
            all.push(name(Capability::CAP_SYS_MODULE));
        }
        return Err(format!(
            "missing capabilit{} {}: run as root, or give the unit AmbientCapabilities={} (and CapabilityBoundingSet= the same)",
            if missing.len() == 1 { "y" } else { "ies" },
            missing.join(", "),
            all.join(" ")
        ));
    }
    LOW_PORT.store(needs.low_port, Ordering::Relaxed);
    let modprobe = needs.module && effective.contains(&Capability::CAP_SYS_MODULE);
    if needs.module && !modprobe {
        log::info!("no CAP_SYS_MODULE: skipping modprobe (the kernel must have WireGuard loaded or built in)");
    }
    if needs.hooks {
        // Hooks are the administrator's code: they run with what the unit grants (as the
        // module's scripts do). Every other child still gets only its own set.
        log::debug!("hooks are configured: keeping the capabilities wg-exec was given for them");
        KEEPS_ALL.store(true, Ordering::Relaxed);
        return Ok(Kept { modprobe });
    }
    let mut keep: CapsHashSet = required.into_iter().collect();
    keep.extend(extra.iter().filter(|c| effective.contains(c)));
    if modprobe {
        keep.insert(Capability::CAP_SYS_MODULE);
    }
    drop_all_but(&keep)?;
    Ok(Kept { modprobe })
}

fn drop_all_but(keep: &CapsHashSet) -> Result<(), String> {
    let err =
        |what: &str, e: caps::errors::CapsError| format!("cannot drop capabilities ({what}): {e}");
    // The bounding set can only shrink while CAP_SETPCAP is effective: do it first.
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        for c in caps::all() {
            if !keep.contains(&c) && caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) {
                caps::drop(None, CapSet::Bounding, c).map_err(|e| err("bounding", e))?;
            }
        }
    } else {
        log::debug!("no CAP_SETPCAP: the bounding set stays as the unit set it");
    }
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| err("read", e))?;
    let keep: CapsHashSet = keep.intersection(&permitted).copied().collect();
    // CAP_SETPCAP stays permitted (not effective) when wg-exec has it: a child running as root
    // needs it, between fork and exec, to shrink its bounding set to its own grant (else root
    // gets the whole bounding set back at exec). It is no longer in the bounding set above, so
    // no child can keep it.
    let mut kept_permitted = keep.clone();
    if permitted.contains(&Capability::CAP_SETPCAP) {
        kept_permitted.insert(Capability::CAP_SETPCAP);
    }
    // No ambient and no inheritable: each child sets its own (src/linux/child.rs).
    caps::set(None, CapSet::Ambient, &CapsHashSet::new()).map_err(|e| err("ambient", e))?;
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new()).map_err(|e| err("inheritable", e))?;
    caps::set(None, CapSet::Effective, &keep).map_err(|e| err("effective", e))?;
    caps::set(None, CapSet::Permitted, &kept_permitted).map_err(|e| err("permitted", e))?;
    log::debug!("capabilities kept: {keep:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaces_elsewhere_and_low_ports_add_capabilities() {
        let mut needs = Needs::default();
        assert_eq!(required(&needs, |_| true), [Capability::CAP_NET_ADMIN]);
        needs.namespaces.insert(Netns::Named("x".into()));
        // `ip netns exec x wg-exec …` with socket_namespace "x": x is the current one.
        assert_eq!(required(&needs, |_| false), [Capability::CAP_NET_ADMIN]);
        assert_eq!(
            required(&needs, |_| true),
            [Capability::CAP_NET_ADMIN, Capability::CAP_SYS_ADMIN]
        );
        needs.low_port = true;
        assert_eq!(
            required(&needs, |_| false),
            [Capability::CAP_NET_ADMIN, Capability::CAP_NET_BIND_SERVICE]
        );
    }
}
