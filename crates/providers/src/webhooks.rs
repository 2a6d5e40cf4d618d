//! Webhooks the vault registers at a provider for one account (Aircall).

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::ProviderError;
use crate::http_client::{ProviderHttp, oauth_error};
use crate::resolved::ResolvedProvider;

/// A webhook created at the provider: its id (to delete it) and the token its events carry.
#[derive(Debug)]
pub struct CreatedWebhook {
    pub remote_id: String,
    pub token: SecretString,
}

impl ProviderHttp {
    /// `POST webhooks_url` with the grant's Bearer token: `{"custom_name","url","events"}`.
    pub async fn create_webhook(
        &self,
        provider: &ResolvedProvider,
        access_token: &SecretString,
        target_url: &str,
        events: &[String],
    ) -> Result<CreatedWebhook, ProviderError> {
        let url = provider
            .endpoints
            .webhooks_url
            .clone()
            .ok_or_else(|| ProviderError::Config("the provider has no webhooks URL".into()))?;
        let request = self
            .client
            .post(url)
            .bearer_auth(access_token.expose_secret())
            .json(&json!({ "custom_name": "tokenvault", "url": target_url, "events": events }));
        let response = self.send(request).await?;
        if !response.status().is_success() {
            return Err(oauth_error(response).await);
        }
        let body: Value = ProviderHttp::json_body(response).await?;
        let webhook = body.get("webhook").unwrap_or(&body);
        let remote_id = webhook.get("webhook_id").or_else(|| webhook.get("id")).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let token = webhook.get("token").and_then(Value::as_str);
        match (remote_id, token) {
            (Some(remote_id), Some(token)) => {
                Ok(CreatedWebhook { remote_id, token: SecretString::from(token.to_owned()) })
            }
            _ => Err(ProviderError::Protocol("webhook response has no id or token".into())),
        }
    }
}
