//! The operator's master key: it only wraps and unwraps data keys.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::key_ring::{DataKey, KeyId};
use crate::sealed::NONCE_LEN;

/// 32 bytes of key material. `Debug` never shows it.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(fingerprint={})", self.fingerprint())
    }
}

impl MasterKey {
    /// A fresh random key, for the embedded default's key file.
    pub fn generate() -> Self {
        let mut bytes = Box::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Self(SecretBox::new(bytes))
    }

    /// Parses standard base64 of exactly 32 bytes. Surrounding whitespace is ignored so a key
    /// file ending in a newline works. The error never echoes the input.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let decoded = Zeroizing::new(
            STANDARD.decode(text.trim()).map_err(|_| CryptoError::InvalidMasterKey("not valid base64"))?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::InvalidMasterKey("must decode to exactly 32 bytes"))?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    /// The key as base64, only for writing the key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.expose_secret()))
    }

    /// A short public identifier of the key (not reversible), so the vault can tell an operator
    /// "this is not the master key the database was set up with" instead of failing obscurely.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"tokenvault/master-key-fingerprint");
        hasher.update(self.0.expose_secret());
        hasher.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Wraps a data key for storage in the database.
    pub fn wrap(&self, key: &DataKey) -> Vec<u8> {
        let cipher = Aes256Gcm::new(self.0.expose_secret().into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = wrap_aad(key.id());
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: key.material(), aad: &aad })
            .expect("AES-GCM encryption with a valid key cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Unwraps a data key read from the database.
    pub fn unwrap_key(&self, id: KeyId, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        if wrapped.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let cipher = Aes256Gcm::new(self.0.expose_secret().into());
        let (nonce, ciphertext) = wrapped.split_at(NONCE_LEN);
        let aad = wrap_aad(id);
        let plain = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
                .map_err(|_| CryptoError::UnwrapFailed(id))?,
        );
        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| CryptoError::Malformed)?;
        Ok(DataKey::from_bytes(id, bytes))
    }
}

fn wrap_aad(id: KeyId) -> Vec<u8> {
    let mut aad = b"tokenvault/data-key/".to_vec();
    aad.extend_from_slice(&id.0.to_be_bytes());
    aad
}
