//! The real kernel's kernel modules.

use crate::linux::{child, LinuxKernel};
use std::path::Path;
use std::time::{Duration, Instant};
use wg_exec_steps::kernel::Modules;
use wg_exec_steps::KernelError;

/// How long a module another process is loading may take to finish its init.
const LIVE_LIMIT: Duration = Duration::from_secs(10);

impl Modules for LinuxKernel {
    fn modprobe(&mut self, module: &str) -> Result<(), KernelError> {
        let sys = Path::new("/sys/module").join(module);
        let result = match sys.exists() {
            true => {
                log::debug!("module {module} is already loaded");
                Ok(())
            }
            false => child::modprobe(module),
        };
        // No later step loads a module: the capability goes with the step.
        crate::privileges::give_up(caps::Capability::CAP_SYS_MODULE);
        result.and_then(|()| live(module, &sys, LIVE_LIMIT))
    }
}

/// Waits until `module` has finished its init. /sys/module/NAME appears before the module's
/// init has run (initstate "coming"), and modprobe returns at once for a module in that state:
/// when two wg-exec start together at boot, the second would add its link before the
/// "wireguard" link kind exists (EOPNOTSUPP, and Auto would start the userspace daemon for
/// good). A built-in module has no initstate file; a module that is not there after modprobe
/// is left to the link add to report.
fn live(module: &str, sys: &Path, limit: Duration) -> Result<(), KernelError> {
    let file = sys.join("initstate");
    let deadline = Instant::now() + limit;
    loop {
        let state = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(_) => return Ok(()),
        };
        let state = state.trim();
        if state == "live" {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(KernelError::new(format!(
                "module {module} is still {state:?} after {:?} ({})",
                limit,
                file.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_still_coming_is_waited_for_and_a_stuck_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path();
        // Built in: no initstate file.
        assert!(live("wireguard", sys, Duration::ZERO).is_ok());
        let file = sys.join("initstate");
        std::fs::write(&file, "coming\n").unwrap();
        // The flag is set before "live" is written: seen set, live() did not return early.
        let flipped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flip = {
            let (file, flipped) = (file.clone(), flipped.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                flipped.store(true, std::sync::atomic::Ordering::SeqCst);
                std::fs::write(&file, "live\n").unwrap();
            })
        };
        live("wireguard", sys, Duration::from_secs(10)).unwrap();
        assert!(
            flipped.load(std::sync::atomic::Ordering::SeqCst),
            "returned while coming"
        );
        flip.join().unwrap();
        std::fs::write(&file, "going\n").unwrap();
        let e = live("wireguard", sys, Duration::from_millis(50)).unwrap_err();
        assert!(e.message.contains("still \"going\""), "{}", e.message);
    }
}
