use crate::KeyId;

/// Why a seal or open failed. Messages never contain key material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value has unsupported format version {0}")]
    UnsupportedVersion(u8),
    #[error("sealed value names data key {0}, which this key ring does not hold")]
    UnknownKey(KeyId),
    #[error("sealed value failed authentication: it was altered or belongs to another row or field")]
    OpenFailed,
    #[error("master key is invalid: {0}")]
    InvalidMasterKey(&'static str),
    #[error("data key {0} could not be unwrapped: the master key does not match the one it was wrapped with")]
    UnwrapFailed(KeyId),
}
