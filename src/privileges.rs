//! Capabilities: check up front that the plan can run, and drop everything it does not need
//! (bounding set first, then effective, permitted and inheritable, then ambient, as youki does)
//! before the first step.

use caps::{CapSet, Capability, CapsHashSet};
use wg_exec_steps::step::Needs;
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

fn name(c: Capability) -> String {
    c.to_string()
}

/// Fails (for exit 2) naming what is missing and how to grant it; otherwise drops what is not
/// needed.
pub fn check_and_drop(needs: &Needs) -> Result<Kept, String> {
    check_and_drop_keeping(needs, &[])
}

/// [`check_and_drop`], also keeping those of `extra` that wg-exec has (not required).
pub fn check_and_drop_keeping(needs: &Needs, extra: &[Capability]) -> Result<Kept, String> {
    let effective = caps::read(None, CapSet::Effective)
        .map_err(|e| format!("cannot read capabilities: {e}"))?;
    let required = required(needs, |ns| !crate::linux::is_current_netns(ns));
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
    let modprobe = needs.module && effective.contains(&Capability::CAP_SYS_MODULE);
    if needs.module && !modprobe {
        log::info!("no CAP_SYS_MODULE: skipping modprobe (the kernel must have WireGuard loaded or built in)");
    }
    if needs.hooks {
        log::debug!("hooks are configured: keeping the capabilities wg-exec was given for them");
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
    caps::set(None, CapSet::Ambient, &CapsHashSet::new()).map_err(|e| err("ambient", e))?;
    caps::set(None, CapSet::Effective, &keep).map_err(|e| err("effective", e))?;
    caps::set(None, CapSet::Inheritable, &keep).map_err(|e| err("inheritable", e))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(|e| err("permitted", e))?;
    // Children (wireguard-go, modprobe) keep exactly these, also when wg-exec is not root.
    for c in &keep {
        caps::raise(None, CapSet::Ambient, *c).map_err(|e| err("ambient", e))?;
    }
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
