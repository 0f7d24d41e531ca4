//! Private key files: a fresh key, written atomically, never replacing one that exists.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use wg_exec_steps::{KernelError, Key};
use zeroize::Zeroize;

/// A fresh Curve25519 private key (clamped, as `wg genkey` writes it).
pub fn generate_key() -> Result<Key, KernelError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| KernelError::new(format!("getrandom: {e}")))?;
    b[0] &= 248;
    b[31] = (b[31] & 127) | 64;
    let key = Key::from_bytes(b, true);
    b.zeroize();
    Ok(key)
}

/// Writes a new key file: parent directory 0755 if missing, an exclusive 0600 temporary file,
/// fsync, then a rename that never replaces an existing file.
pub fn write_key_file(path: &Path) -> Result<(), KernelError> {
    let io = |what: &str, e: std::io::Error| {
        let mut k = KernelError::from_io(&e);
        k.message = format!("{what}: {}", k.message);
        k
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| io(&format!("create {}", dir.display()), e))?;
    }
    let file_name = path.file_name().and_then(|f| f.to_str()).unwrap_or("key");
    let tmp = dir.join(format!(".{file_name}.wg-exec-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io(&format!("create {}", tmp.display()), e))?;
    let key = generate_key()?;
    let mut text = format!("{}\n", key.to_base64());
    let written = f.write_all(text.as_bytes()).and_then(|_| f.sync_all());
    text.zeroize();
    drop(f);
    // link(2) fails with EEXIST rather than replace a key that appeared meanwhile; unlike
    // renameat2(RENAME_NOREPLACE) it also exists in musl builds.
    let placed = written.and_then(|_| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    if let Err(e) = placed {
        return Err(io(&format!("write {}", path.display()), e));
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
