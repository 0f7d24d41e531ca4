//! Public keys from private ones (x25519), to compare a configured private key with a device
//! that reports only its public key (boringtun-cli), and to show it in status.

use wg_exec_steps::Key;
use zeroize::Zeroize;

pub fn public_of(private: &Key) -> Key {
    let mut bytes = *private.as_bytes();
    let secret = x25519_dalek::StaticSecret::from(bytes);
    bytes.zeroize();
    let public = x25519_dalek::PublicKey::from(&secret);
    Key::from_bytes(public.to_bytes(), false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_wg_pubkey() {
        // `echo yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk= | wg pubkey` (wg(8)'s example key).
        let private =
            wg_exec_steps::Key::from_base64("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=", true)
                .unwrap();
        assert_eq!(
            super::public_of(&private).to_base64(),
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
        );
    }
}
