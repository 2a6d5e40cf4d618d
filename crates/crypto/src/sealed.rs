//! The byte layout of a sealed value and the associated data that binds it to its location.
//!
//! Layout: `version (1 byte) | key id (u32 big-endian) | nonce (12 bytes) | ciphertext + tag`.

use crate::{CryptoError, KeyId};

pub(crate) const VERSION: u8 = 1;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;

/// Where a sealed value lives. It is authenticated with the ciphertext, so moving the ciphertext
/// to another table, row or field makes it fail to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealContext<'a> {
    pub table: &'a str,
    pub row_id: &'a str,
    pub field: &'a str,
}

impl<'a> SealContext<'a> {
    pub fn new(table: &'a str, row_id: &'a str, field: &'a str) -> Self {
        Self { table, row_id, field }
    }

    /// Associated data: a domain label, the location, and the header (version and key id), each
    /// length-prefixed so that no two distinct contexts encode to the same bytes.
    pub(crate) fn associated_data(&self, key_id: KeyId) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        for part in
            [b"tokenvault/sealed".as_slice(), self.table.as_bytes(), self.row_id.as_bytes(), self.field.as_bytes()]
        {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad.push(VERSION);
        aad.extend_from_slice(&key_id.0.to_be_bytes());
        aad
    }
}

/// The parsed parts of a sealed value.
pub(crate) struct SealedParts<'a> {
    pub key_id: KeyId,
    pub nonce: &'a [u8],
    pub ciphertext: &'a [u8],
}

pub(crate) fn parse(sealed: &[u8]) -> Result<SealedParts<'_>, CryptoError> {
    let (&version, _) = sealed.split_first().ok_or(CryptoError::Malformed)?;
    if version != VERSION {
        return Err(CryptoError::UnsupportedVersion(version));
    }
    if sealed.len() < HEADER_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let key_id = KeyId(u32::from_be_bytes(sealed[1..5].try_into().map_err(|_| CryptoError::Malformed)?));
    Ok(SealedParts { key_id, nonce: &sealed[5..HEADER_LEN], ciphertext: &sealed[HEADER_LEN..] })
}

pub(crate) fn header(key_id: KeyId, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 64);
    out.push(VERSION);
    out.extend_from_slice(&key_id.0.to_be_bytes());
    out.extend_from_slice(nonce);
    out
}
