//! PKCE (RFC 7636): a fresh verifier per flow and its S256 challenge.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// A verifier (secret until the code exchange) and its challenge.
#[derive(Debug)]
pub struct Pkce {
    pub verifier: SecretString,
    pub challenge: String,
}

impl Pkce {
    /// 32 random octets, base64url: 43 unreserved characters, about 256 bits (RFC 7636 §4.1, §7.1).
    pub fn generate() -> Pkce {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let verifier = SecretString::from(URL_SAFE_NO_PAD.encode(bytes));
        let challenge = code_challenge_s256(verifier.expose_secret());
        Pkce { verifier, challenge }
    }
}

/// `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))` without padding (RFC 7636 §4.2).
pub fn code_challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quirk 27: the RFC 7636 Appendix B test vector.
    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            code_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    /// Quirk 27: verifiers are 43-128 unreserved characters and fresh each time.
    #[test]
    fn generated_verifiers_are_well_formed_and_unique() {
        let a = Pkce::generate();
        let b = Pkce::generate();
        let v = a.verifier.expose_secret();
        assert!((43..=128).contains(&v.len()));
        assert!(v.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c)));
        assert_ne!(v, b.verifier.expose_secret());
        assert_eq!(a.challenge, code_challenge_s256(v));
    }
}
