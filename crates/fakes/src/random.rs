//! Unguessable values: codes, tokens, ids.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// `bytes` random bytes, base64url without padding.
pub fn token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A string shaped like a JWT (`header.claims.signature`), as Zoom's tokens are. Clients must treat
/// it as opaque; the shape only makes the fake look like the real thing in logs and storage.
pub fn jwt_like(claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","v":"2.0","kid":"fake"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.{}", token(64))
}

/// A random version-4 UUID string (Aircall webhook ids).
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// A random positive integer below 2^53, for providers with integer ids.
pub fn int_id() -> u64 {
    rand::thread_rng().next_u64() % (1u64 << 40) + 1
}
