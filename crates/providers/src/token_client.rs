//! Code exchange and refresh, shaped by each provider's token rules.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::definition::TokenEncoding;
use crate::http_client::{ProviderHttp, oauth_error};
use crate::resolved::{ClientCredentials, ResolvedProvider};
use crate::{ProviderError, TokenSet, token_response};

impl ProviderHttp {
    /// Exchanges an authorization code (RFC 6749 §4.1.3).
    pub async fn exchange_code(
        &self,
        provider: &ResolvedProvider,
        credentials: &ClientCredentials,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&SecretString>,
        now_ms: i64,
    ) -> Result<TokenSet, ProviderError> {
        let mut params: Vec<(&'static str, String)> =
            vec![("grant_type", "authorization_code".into()), ("code", code.into())];
        if provider.definition.token.send_redirect_uri {
            params.push(("redirect_uri", redirect_uri.into()));
        }
        if let Some(verifier) = code_verifier {
            params.push(("code_verifier", verifier.expose_secret().to_owned()));
        }
        let tokens = self.token_request(provider, credentials, params, now_ms).await?;
        // A per-grant API base the vault may not call is refused before the grant exists.
        if let Some(denied) = self.refused_api_base(&tokens) {
            return Err(crate::http_client::refused(denied));
        }
        Ok(tokens)
    }

    /// Refreshes (RFC 6749 §6). For a rotating provider the caller must persist the returned
    /// refresh token before using the access token; a `ResponseLost` error means the old
    /// refresh token may already be dead.
    pub async fn refresh(
        &self,
        provider: &ResolvedProvider,
        credentials: &ClientCredentials,
        refresh_token: &SecretString,
        now_ms: i64,
    ) -> Result<TokenSet, ProviderError> {
        let params =
            vec![("grant_type", "refresh_token".into()), ("refresh_token", refresh_token.expose_secret().to_owned())];
        let mut tokens = self.token_request(provider, credentials, params, now_ms).await?;
        if let Some(denied) = self.refused_api_base(&tokens) {
            // The new tokens must still be stored (a rotated refresh token is the only one left):
            // the refused API base is dropped, and the grant keeps the one it had.
            tracing::warn!(provider = %provider.definition.id, reason = %denied, "token response names an API base the egress guard refuses; ignored");
            tokens.api_base_url = None;
        }
        if tokens.refresh_token.is_none() && provider.definition.token.refresh != crate::RefreshStyle::Rotating {
            // RFC 6749 §6: without a new refresh token, the old one stays valid.
            tokens.refresh_token = Some(refresh_token.clone());
        }
        Ok(tokens)
    }

    /// The egress guard's verdict on the API base a token response named (Zoom's `api_url`),
    /// when it is an IP literal (a name is judged whenever it is dialled).
    fn refused_api_base(&self, tokens: &TokenSet) -> Option<crate::EgressDenied> {
        let base = url::Url::parse(tokens.api_base_url.as_deref()?).ok()?;
        self.egress.check_url(&base).err()
    }

    async fn token_request(
        &self,
        provider: &ResolvedProvider,
        credentials: &ClientCredentials,
        mut params: Vec<(&'static str, String)>,
        now_ms: i64,
    ) -> Result<TokenSet, ProviderError> {
        let (basic, body_credentials) = provider.basic_or_body(credentials);
        params.extend(body_credentials);
        let mut request = self.client.post(provider.endpoints.token_url.clone()).header("accept", "application/json");
        if let Some(header) = basic {
            request = request.header("authorization", header.expose_secret());
        }
        request = match provider.definition.token.encoding {
            TokenEncoding::Form => request.form(&params),
            TokenEncoding::Json => {
                let body: Map<String, Value> =
                    params.into_iter().map(|(k, v)| (k.to_owned(), Value::String(v))).collect();
                request.json(&body)
            }
        };
        let response = self.send(request).await?;
        if !response.status().is_success() {
            return Err(oauth_error(response).await);
        }
        let body = Self::json_body(response).await?;
        token_response::parse(provider, &body, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::EgressPolicy;

    fn tokens_with_api_base(base: &str) -> TokenSet {
        TokenSet {
            access_token: SecretString::from("a".to_owned()),
            refresh_token: None,
            token_type: "bearer".into(),
            expires_at_ms: None,
            scope: None,
            api_base_url: Some(base.into()),
            expiry_note: None,
        }
    }

    /// A per-grant API base (Zoom's `api_url`) that is an IP literal in a refused range is
    /// caught when the token response is read; a name is left to the resolver at dial time.
    #[test]
    fn a_refused_ip_literal_api_base_is_caught() {
        let guarded = ProviderHttp::new(Duration::from_secs(1), EgressPolicy::guarded());
        for refused in ["https://10.0.0.1", "https://[::ffff:169.254.169.254]/v2", "http://127.0.0.1:9000"] {
            let denied = guarded.refused_api_base(&tokens_with_api_base(refused));
            assert!(denied.is_some(), "{refused}");
        }
        assert!(guarded.refused_api_base(&tokens_with_api_base("https://eu01api-www4local.zoom.us")).is_none());
        let allowed = ProviderHttp::new(Duration::from_secs(1), EgressPolicy::unrestricted());
        assert!(allowed.refused_api_base(&tokens_with_api_base("http://127.0.0.1:9000")).is_none());
    }
}
