//! PKCE (RFC 7636): challenges stored with codes, verifiers checked at the token endpoint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Plain,
    S256,
}

impl Method {
    /// `None` for an unknown method name. An absent method means `plain` (RFC 7636 §4.3).
    pub fn parse(name: Option<&str>) -> Option<Method> {
        match name {
            None | Some("plain") => Some(Method::Plain),
            Some("S256") => Some(Method::S256),
            Some(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub challenge: String,
    pub method: Method,
}

/// Why a verifier was refused; every case is `invalid_grant` on the wire (RFC 7636 §4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkceError {
    /// A challenge was sent but no verifier.
    Missing,
    /// A verifier was sent but no challenge (downgrade, RFC 9700 §2.1.1).
    Unexpected,
    /// Not 43-128 unreserved characters.
    Malformed,
    Mismatch,
}

impl PkceError {
    pub fn description(self) -> &'static str {
        match self {
            PkceError::Missing => "code_verifier is required",
            PkceError::Unexpected => "code_verifier sent but no code_challenge was used",
            PkceError::Malformed => "code_verifier must be 43-128 unreserved characters",
            PkceError::Mismatch => "code_verifier does not match code_challenge",
        }
    }
}

/// 43-128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1; the same rule applies to challenges).
pub fn well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL(SHA256(verifier))` without padding.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Checks the token request's verifier against the code's challenge.
pub fn verify(challenge: Option<&Challenge>, verifier: Option<&str>) -> Result<(), PkceError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(PkceError::Unexpected),
        (Some(_), None) => Err(PkceError::Missing),
        (Some(c), Some(v)) => {
            if !well_formed(v) {
                return Err(PkceError::Malformed);
            }
            let computed = match c.method {
                Method::Plain => v.to_owned(),
                Method::S256 => s256(v),
            };
            if computed == c.challenge { Ok(()) } else { Err(PkceError::Mismatch) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(s256(VERIFIER), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn verify_cases() {
        let s = Challenge { challenge: s256(VERIFIER), method: Method::S256 };
        let p = Challenge { challenge: VERIFIER.into(), method: Method::Plain };
        assert_eq!(verify(Some(&s), Some(VERIFIER)), Ok(()));
        assert_eq!(verify(Some(&p), Some(VERIFIER)), Ok(()));
        assert_eq!(verify(Some(&p), Some(&s256(VERIFIER))), Err(PkceError::Mismatch));
        assert_eq!(verify(Some(&s), None), Err(PkceError::Missing));
        assert_eq!(verify(None, Some(VERIFIER)), Err(PkceError::Unexpected));
        assert_eq!(verify(Some(&s), Some("short")), Err(PkceError::Malformed));
        assert_eq!(Method::parse(None), Some(Method::Plain));
        assert_eq!(Method::parse(Some("s256")), None);
    }
}
