//! Data keys and the ring that seals with the active one and opens with any it holds.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::sealed::{self, NONCE_LEN, SealContext};

/// Identifies a data key; stored in every sealed value's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An AES-256 key that seals secrets. `Debug` shows only its id.
pub struct DataKey {
    id: KeyId,
    material: SecretBox<[u8; 32]>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl DataKey {
    pub fn generate(id: KeyId) -> Self {
        let mut bytes = Box::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Self { id, material: SecretBox::new(bytes) }
    }

    pub(crate) fn from_bytes(id: KeyId, bytes: [u8; 32]) -> Self {
        Self { id, material: SecretBox::new(Box::new(bytes)) }
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn material(&self) -> &[u8] {
        self.material.expose_secret()
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.material.expose_secret().into())
    }
}

/// The data keys a process can use: one active key for sealing, every known key for opening.
#[derive(Debug)]
pub struct KeyRing {
    active: KeyId,
    keys: BTreeMap<KeyId, DataKey>,
}

impl KeyRing {
    /// `active` seals; `others` (older keys still referenced by stored data) only open.
    pub fn new(active: DataKey, others: impl IntoIterator<Item = DataKey>) -> Self {
        let active_id = active.id;
        let mut keys: BTreeMap<KeyId, DataKey> = others.into_iter().map(|k| (k.id, k)).collect();
        keys.insert(active_id, active);
        Self { active: active_id, keys }
    }

    pub fn active_key_id(&self) -> KeyId {
        self.active
    }

    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.keys().copied()
    }

    pub fn contains(&self, id: KeyId) -> bool {
        self.keys.contains_key(&id)
    }

    /// Seals `plaintext` under the active key, bound to `context`.
    pub fn seal(&self, context: &SealContext<'_>, plaintext: &[u8]) -> Vec<u8> {
        let key = &self.keys[&self.active];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = context.associated_data(key.id);
        let ciphertext = key
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .expect("AES-GCM encryption with a valid key cannot fail");
        let mut out = sealed::header(key.id, &nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a sealed value; fails closed if it was altered, moved, or sealed by an unknown key.
    pub fn open(&self, context: &SealContext<'_>, sealed_value: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let parts = sealed::parse(sealed_value)?;
        let key = self.keys.get(&parts.key_id).ok_or(CryptoError::UnknownKey(parts.key_id))?;
        let aad = context.associated_data(parts.key_id);
        key.cipher()
            .decrypt(Nonce::from_slice(parts.nonce), Payload { msg: parts.ciphertext, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::OpenFailed)
    }

    /// Which key sealed a value, without opening it (rotation uses this to find stale values).
    pub fn key_id_of(sealed_value: &[u8]) -> Result<KeyId, CryptoError> {
        sealed::parse(sealed_value).map(|p| p.key_id)
    }
}
