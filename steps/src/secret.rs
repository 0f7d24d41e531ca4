//! WireGuard keys: 32 bytes, base64 on the outside. Secret keys are zeroized on drop and never
//! printed: their `Debug` and `Display` say `<redacted>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fmt;
use zeroize::Zeroize;

/// Why a string is not a WireGuard key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not valid base64")]
    Base64,
    #[error("decodes to {0} bytes, a WireGuard key is exactly 32")]
    Length(usize),
}

/// A 32-byte WireGuard key. Used for public keys (printable) and, wrapped in [`Secret`] semantics
/// by [`Key::secret`], for private and preshared keys.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    bytes: [u8; 32],
    secret: bool,
}

impl Key {
    /// Parses base64 (surrounding white space allowed, as in key files written by `wg genkey`).
    pub fn from_base64(text: &str, secret: bool) -> Result<Key, KeyError> {
        let mut decoded = STANDARD
            .decode(text.trim().as_bytes())
            .map_err(|_| KeyError::Base64)?;
        if decoded.len() != 32 {
            let len = decoded.len();
            decoded.zeroize();
            return Err(KeyError::Length(len));
        }
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&decoded);
        decoded.zeroize();
        Ok(Key { bytes, secret })
    }

    pub fn from_bytes(bytes: [u8; 32], secret: bool) -> Key {
        Key { bytes, secret }
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub fn is_secret(&self) -> bool {
        self.secret
    }

    /// Base64 text. Only public keys should ever be shown; secrets go only to the kernel.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// Lowercase hex, the form the WireGuard UAPI speaks.
    pub fn to_hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            f.write_str("<redacted>")
        } else {
            f.write_str(&self.to_base64())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_redacts() {
        let k = Key::from_base64("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", false).unwrap();
        assert_eq!(
            k.to_string(),
            "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
        );
        let s = Key::from_base64("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\n", true).unwrap();
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(s.to_hex().len(), 64);
    }

    #[test]
    fn rejects_wrong_lengths() {
        assert_eq!(Key::from_base64("AAAA", false), Err(KeyError::Length(3)));
        assert_eq!(
            Key::from_base64("not base64!", false),
            Err(KeyError::Base64)
        );
    }
}
