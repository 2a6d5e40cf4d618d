//! Client authentication at token and revocation endpoints (RFC 6749 §2.3.1).
//!
//! HTTP Basic is decoded exactly as the RFC says: base64, split at the FIRST `:`, then
//! form-urldecode each half. A client that does not form-encode a secret containing `%`, `+` or
//! `:` therefore fails here, as it would against a conforming server.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::model::ClientRegistration;
use crate::params::Params;

/// How the client presented its credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Body,
    /// Only a `client_id` (public client).
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Basic => "basic",
            AuthMethod::Body => "body",
            AuthMethod::None => "none",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
    pub secret: Option<String>,
    pub method: AuthMethod,
    /// Basic was used AND the body also carried a `client_secret` (two methods at once).
    pub also_in_body: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialError {
    /// No client identification at all.
    Missing,
    /// An `Authorization: Basic` header that does not decode.
    MalformedBasic,
    /// Basic and body name different clients.
    Conflicting,
}

/// The credentials a request presents, without checking them.
pub fn presented(headers: &HeaderMap, params: &Params) -> Result<Credentials, CredentialError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let value = value.to_str().map_err(|_| CredentialError::MalformedBasic)?;
        if let Some((scheme, encoded)) = value.split_once(' ')
            && scheme.eq_ignore_ascii_case("basic")
        {
            let (id, secret) = decode_basic(encoded.trim()).ok_or(CredentialError::MalformedBasic)?;
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(CredentialError::Conflicting);
            }
            return Ok(Credentials {
                client_id: id,
                secret: Some(secret),
                method: AuthMethod::Basic,
                also_in_body: params.get("client_secret").is_some(),
            });
        }
    }
    let client_id = params.get("client_id").ok_or(CredentialError::Missing)?.to_owned();
    let secret = params.get("client_secret").map(str::to_owned);
    let method = if secret.is_some() { AuthMethod::Body } else { AuthMethod::None };
    Ok(Credentials { client_id, secret, method, also_in_body: false })
}

/// Decodes a Basic credential per RFC 6749 §2.3.1.
pub fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let bytes = STANDARD.decode(encoded).or_else(|_| STANDARD_NO_PAD.decode(encoded)).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_urldecode(id)?, form_urldecode(secret)?))
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte.
/// Invalid percent escapes or non-UTF-8 results are refused.
pub fn form_urldecode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Secret comparison that does not stop at the first differing byte.
pub fn secret_matches(registration: &ClientRegistration, secret: Option<&str>) -> bool {
    let Some(secret) = secret else { return false };
    let (a, b) = (registration.client_secret.as_bytes(), secret.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> String {
        STANDARD.encode(raw)
    }

    #[test]
    fn basic_splits_at_first_colon_and_form_decodes() {
        // secret `a:b%c+d` encoded as the RFC requires
        let enc = basic("my%20id:a%3Ab%25c%2Bd");
        assert_eq!(decode_basic(&enc), Some(("my id".into(), "a:b%c+d".into())));
        // the same secret sent raw: `%c+` is not a valid escape
        assert_eq!(decode_basic(&basic("id:a:b%c+d")), None);
        // raw `+` decodes to a space, so an unencoded `+` secret would not match
        assert_eq!(decode_basic(&basic("id:x+y")), Some(("id".into(), "x y".into())));
        assert_eq!(decode_basic("%%%"), None);
        assert_eq!(decode_basic(&basic("nocolon")), None);
    }

    #[test]
    fn presented_prefers_basic_and_detects_conflicts() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, format!("Basic {}", basic("c1:s1")).parse().unwrap());
        let body = Params::from_form(b"client_id=c2");
        assert_eq!(presented(&headers, &body), Err(CredentialError::Conflicting));
        let body = Params::from_form(b"client_id=c1&client_secret=s1");
        let creds = presented(&headers, &body).unwrap();
        assert_eq!(creds.method, AuthMethod::Basic);
        assert!(creds.also_in_body);
        let creds = presented(&HeaderMap::new(), &body).unwrap();
        assert_eq!(creds.method, AuthMethod::Body);
        assert_eq!(presented(&HeaderMap::new(), &Params::default()), Err(CredentialError::Missing));
    }
}
