//! Encryption at rest for every secret tokenvault stores.
//!
//! Envelope encryption: a *master key* (from the operator, never stored next to the data) wraps
//! *data keys* that live in the database; data keys seal individual secrets. Rotating a data key
//! is then an online, batched re-seal that needs no change of operator configuration, and every
//! sealed value names the data key that sealed it so old and new ciphertexts coexist while a
//! rotation runs.
//!
//! Every seal binds the ciphertext to its location ([`SealContext`]: table, row, field) through
//! AES-GCM associated data, so a ciphertext copied into another row or field fails to open.

mod error;
mod key_ring;
mod master_key;
mod sealed;

pub use error::CryptoError;
pub use key_ring::{DataKey, KeyId, KeyRing};
pub use master_key::MasterKey;
pub use sealed::SealContext;
