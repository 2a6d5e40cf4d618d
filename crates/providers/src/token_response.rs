//! Parsing a token endpoint's success response, tolerant where RFC 6749 §5.1 allows it.

use secrecy::SecretString;
use serde_json::Value;

use crate::ProviderError;
use crate::expiry;
use crate::resolved::ResolvedProvider;

/// Tokens from a code exchange or refresh. `Debug` never shows token values.
#[derive(Debug)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    /// Normalised to lower case (`bearer`); the provider may send `Bearer`.
    pub token_type: String,
    /// Unix ms; `None` means the token does not expire.
    pub expires_at_ms: Option<i64>,
    /// Granted scopes when the provider says (Zoom does; Dialpad does not).
    pub scope: Option<String>,
    /// A per-grant API base from the response (Zoom's `api_url`), already checked.
    pub api_base_url: Option<String>,
    /// Set when `expires_in` needed interpretation (epoch, capped, missing).
    pub expiry_note: Option<&'static str>,
}

/// Reads a token response. Unknown fields (`id_token`, `created_at`, ...) are ignored; missing
/// optional ones (`scope`, `expires_in`, `token_type`) are fine.
pub(crate) fn parse(provider: &ResolvedProvider, body: &Value, now_ms: i64) -> Result<TokenSet, ProviderError> {
    let access_token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ProviderError::Protocol("token response has no access_token".into()))?;
    let token_type = body.get("token_type").and_then(Value::as_str).unwrap_or("bearer").to_ascii_lowercase();
    if token_type != "bearer" {
        return Err(ProviderError::Protocol(format!("unsupported token_type `{token_type}` (only bearer)")));
    }
    let refresh_token = body.get("refresh_token").and_then(Value::as_str).filter(|t| !t.is_empty());
    let expires_in = body.get("expires_in").and_then(|v| match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    let scope = match body.get("scope") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")),
        _ => None,
    };
    let rules = &provider.definition.token;
    let expiry = expiry::compute(
        rules.expires_in,
        expires_in,
        now_ms,
        rules.max_lifetime_seconds,
        rules.assumed_lifetime_seconds,
        refresh_token.is_some(),
    );
    if let Some(note) = expiry.note {
        tracing::warn!(provider = %provider.definition.id, note, "unusual expires_in in token response");
    }
    let api_base_url =
        match provider.endpoints.api_base_url_field.as_deref().and_then(|f| body.get(f)).and_then(Value::as_str) {
            Some(url) => Some(provider.check_api_base(url)?),
            None => None,
        };
    Ok(TokenSet {
        access_token: SecretString::from(access_token.to_owned()),
        refresh_token: refresh_token.map(|t| SecretString::from(t.to_owned())),
        token_type,
        expires_at_ms: expiry.at_ms,
        scope,
        api_base_url,
        expiry_note: expiry.note,
    })
}
