//! The one cipher of the crate, XChaCha20-Poly1305, as `nonce || ciphertext`
//! with a random 24-byte nonce (random nonces are safe at this size: no
//! counter to keep), and random keys.

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// Bytes of the nonce at the front of every ciphertext.
pub(crate) const NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag at the end of every ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// 32 bytes from the operating system's random source, wiped on drop.
///
/// Panics only if the operating system has no random source to give
/// (`getrandom` failing), where no key can be made safely anyway.
pub(crate) fn random_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut());
    key
}

/// `nonce || XChaCha20-Poly1305(key, nonce, aad, msg)` with a fresh random nonce.
pub(crate) fn encrypt(key: &[u8; 32], aad: &[u8], msg: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(&nonce, Payload { msg, aad })
        .expect("XChaCha20-Poly1305 encrypts any message below 256 GiB");
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// The message of [`encrypt`]'s output, or `None` when it does not
/// authenticate under `key` and `aad` (or is too short to be one).
pub(crate) fn decrypt(key: &[u8; 32], aad: &[u8], data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if data.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, sealed) = data.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_round_trips_and_binds_the_associated_data() {
        let key = random_key();
        let sealed = encrypt(&key, b"aad", b"message");
        assert_eq!(sealed.len(), NONCE_LEN + 7 + TAG_LEN);
        assert_eq!(
            decrypt(&key, b"aad", &sealed).unwrap().as_slice(),
            b"message"
        );
        assert!(decrypt(&key, b"other", &sealed).is_none());
        assert!(decrypt(&random_key(), b"aad", &sealed).is_none());
        assert!(decrypt(&key, b"aad", &sealed[..20]).is_none());
        assert_ne!(*random_key(), *random_key());
    }
}
