//! HTTP Basic client authentication as RFC 6749 §2.3.1 defines it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// `Basic base64(urlencode(client_id) ":" urlencode(client_secret))`. The form-urlencoding
/// (Appendix B) is what makes secrets containing `:`, `%` or `+` work.
pub(crate) fn basic_header(client_id: &str, client_secret: &SecretString) -> SecretString {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = Zeroizing::new(format!("{}:{}", encode(client_id), encode(client_secret.expose_secret())));
    SecretString::from(format!("Basic {}", STANDARD.encode(pair.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quirk 29: reserved characters are form-urlencoded before base64.
    #[test]
    fn reserved_characters_are_encoded_before_base64() {
        let header = basic_header("my id", &SecretString::from("a:b%c+d"));
        let encoded = header.expose_secret().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "my+id:a%3Ab%25c%2Bd");
        // Exactly one unencoded ':' separates id and secret.
        assert_eq!(decoded.matches(':').count(), 1);
    }
}
