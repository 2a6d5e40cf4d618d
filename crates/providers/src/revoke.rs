//! Revoking a grant at the provider, in each provider's way.

use secrecy::{ExposeSecret, SecretString};

use crate::ProviderError;
use crate::definition::RevokeStyle;
use crate::http_client::{ProviderHttp, oauth_error, retry_after};
use crate::resolved::{ClientCredentials, ResolvedProvider};

impl ProviderHttp {
    /// Revokes at the provider. A token the provider already considers invalid counts as
    /// revoked (RFC 7009 §2.2); only transient failures and real rejections are errors. Where
    /// the access token itself authenticates the revocation of a refreshable grant (Dialpad),
    /// a 401 proves nothing (the access token may just have expired): it is returned as
    /// `Unauthorized` so the caller can refresh and try again.
    pub async fn revoke(
        &self,
        provider: &ResolvedProvider,
        credentials: &ClientCredentials,
        access_token: &SecretString,
        refresh_token: Option<&SecretString>,
        webhook_ids: &[String],
    ) -> Result<(), ProviderError> {
        let Some(url) = provider.endpoints.revoke_url.clone() else {
            return Ok(());
        };
        match provider.definition.revoke.style {
            RevokeStyle::None => Ok(()),
            RevokeStyle::BearerAccessToken => {
                // Dialpad: empty body, Bearer access token, 204 (or 200).
                let request =
                    self.client.post(url).bearer_auth(access_token.expose_secret()).header("content-length", "0");
                let response = self.send(request).await?;
                if response.status() == reqwest::StatusCode::UNAUTHORIZED && refresh_token.is_some() {
                    return Err(ProviderError::Unauthorized {
                        at: crate::error::call_site(response.url()),
                        status: 401,
                    });
                }
                expect_done(response, true).await
            }
            RevokeStyle::Rfc7009 => {
                for (token, hint) in [(refresh_token, "refresh_token"), (Some(access_token), "access_token")] {
                    let Some(token) = token else { continue };
                    let (basic, mut params) = provider.basic_or_body(credentials);
                    params.push(("token", token.expose_secret().to_owned()));
                    params.push(("token_type_hint", hint.to_owned()));
                    let mut request = self.client.post(url.clone()).form(&params);
                    if let Some(header) = basic {
                        request = request.header("authorization", header.expose_secret());
                    }
                    expect_done(self.send(request).await?, false).await?;
                }
                Ok(())
            }
            RevokeStyle::AircallDisable => {
                if let Some(webhooks) = &provider.endpoints.webhooks_url {
                    for id in webhook_ids {
                        let request = self
                            .client
                            .delete(format!("{}/{}", webhooks.as_str().trim_end_matches('/'), id))
                            .bearer_auth(access_token.expose_secret());
                        let response = self.send(request).await?;
                        if response.status() != reqwest::StatusCode::NOT_FOUND {
                            expect_done(response, true).await?;
                        }
                    }
                }
                let request =
                    self.client.post(url).bearer_auth(access_token.expose_secret()).header("content-length", "0");
                expect_done(self.send(request).await?, true).await
            }
        }
    }
}

/// Success, or "already invalid": 2xx; 401 when the access token itself authenticated the call
/// (and cannot be refreshed, so a 401 means it is dead);
/// RFC 7009 / Zoom style 400 `invalid_token` or `invalid_grant`.
async fn expect_done(response: reqwest::Response, bearer_authenticated: bool) -> Result<(), ProviderError> {
    let status = response.status();
    if status.is_success() || (bearer_authenticated && status == reqwest::StatusCode::UNAUTHORIZED) {
        return Ok(());
    }
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(ProviderError::Transient {
            reason: format!("HTTP {} from {}", status.as_u16(), crate::error::call_site(response.url())),
            retry_after: retry_after(&response),
        });
    }
    match oauth_error(response).await {
        ProviderError::InvalidGrant { .. } => Ok(()),
        ProviderError::Rejected { error, .. } if error == "invalid_token" => Ok(()),
        other => Err(other),
    }
}
