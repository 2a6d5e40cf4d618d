//! Webhooks from providers to the vault.
//!
//! - Zoom signs each request (`x-zm-signature: v0=HMAC-SHA256(secret, "v0:{ts}:{raw body}")`,
//!   `x-zm-request-timestamp` in seconds). The vault checks the signature in constant time over
//!   the raw bytes, refuses timestamps more than 5 minutes off, answers `endpoint.url_validation`,
//!   and on `app_deauthorized` revokes the matching grants locally (tokens erased, idempotent).
//!   Only database work happens, so the answer comes well inside Zoom's 3 seconds.
//! - Aircall events carry the token of the webhook the vault created for that account at
//!   connect; the vault routes by a hash of it and forwards the event to the app as
//!   `provider.event` (without the token). Unknown tokens get 404, whatever the reason.

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;
use tokenvault_crypto::SealContext;
use tokenvault_providers::InboundWebhooks;
use tokenvault_store::{ProviderConfigRecord, ProviderWebhookRecord};

use crate::lifecycle::grants::NewConnection;
use crate::values::secrets::{constant_time_eq, hash_secret};
use crate::{IdKind, ServiceError, Vault};

const ZOOM_MAX_SKEW_SECONDS: i64 = 300;
const AIRCALL_TOKEN_PURPOSE: &str = "tokenvault/provider-webhook-token";

fn unauthorized() -> ServiceError {
    ServiceError::Unauthenticated {
        code: "invalid_signature",
        message: "the webhook signature is missing, wrong or too old",
    }
}

fn not_found() -> ServiceError {
    ServiceError::NotFound { what: "webhook target" }
}

fn hmac_hex(secret: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

impl Vault {
    async fn inbound_config(
        &self,
        config_id: &str,
        style: InboundWebhooks,
    ) -> Result<ProviderConfigRecord, ServiceError> {
        let config_id = IdKind::ProviderConfig.parse(config_id).map_err(|_| not_found())?;
        let config = self.store.find_provider_config(&config_id).await.map_err(|_| not_found())?;
        let matches = self.catalog().get(&config.provider).is_some_and(|d| d.inbound_webhooks == Some(style));
        if matches { Ok(config) } else { Err(not_found()) }
    }

    /// `POST /webhooks/zoom/{config_id}`: returns the JSON to answer with.
    pub async fn handle_zoom_webhook(
        &self,
        config_id: &str,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Value, ServiceError> {
        let config = self.inbound_config(config_id, InboundWebhooks::ZoomSigned).await?;
        let sealed = config.webhook_secret.as_ref().ok_or_else(unauthorized)?;
        let secret =
            self.keys.open(&SealContext::new("provider_configs", &config.id, "webhook_secret"), sealed).await?;
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else { return Err(unauthorized()) };
        let sent_at: i64 = timestamp.trim().parse().map_err(|_| unauthorized())?;
        if (self.now().as_unix_seconds() - sent_at).abs() > ZOOM_MAX_SKEW_SECONDS {
            return Err(unauthorized());
        }
        let mut signed = format!("v0:{timestamp}:").into_bytes();
        signed.extend_from_slice(body);
        let expected = format!("v0={}", hmac_hex(&secret, &signed));
        if !constant_time_eq(expected.as_bytes(), signature.trim().as_bytes()) {
            return Err(unauthorized());
        }
        let event: Value = serde_json::from_slice(body)
            .map_err(|_| ServiceError::invalid("invalid_body", "the webhook body is not JSON"))?;
        match event.get("event").and_then(Value::as_str) {
            Some("endpoint.url_validation") => {
                let plain = event
                    .pointer("/payload/plainToken")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ServiceError::invalid("invalid_body", "missing payload.plainToken"))?;
                Ok(json!({ "plainToken": plain, "encryptedToken": hmac_hex(&secret, plain.as_bytes()) }))
            }
            Some("app_deauthorized") => {
                self.zoom_deauthorized(&config, &event).await?;
                Ok(json!({ "status": "ok" }))
            }
            _ => Ok(json!({ "status": "ignored" })),
        }
    }

    async fn zoom_deauthorized(&self, config: &ProviderConfigRecord, event: &Value) -> Result<(), ServiceError> {
        let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
        let (Some(account_id), Some(user_id)) = (text("/payload/account_id"), text("/payload/user_id")) else {
            return Err(ServiceError::invalid(
                "invalid_body",
                "app_deauthorized needs payload.account_id and payload.user_id",
            ));
        };
        if text("/payload/client_id").is_some_and(|c| c != config.client_id) {
            return Ok(());
        }
        let account_key =
            tokenvault_providers::Identity { account_id, user_id: Some(user_id), display_name: None, email: None }
                .key();
        const REASON: &str = "provider_deauthorized";
        for grant_id in self.store.grants_for_account(&config.id, &account_key).await? {
            let grant = self.store.find_grant(&grant_id).await?;
            if grant.status == "revoked" {
                continue; // a redelivery
            }
            let events = self.grant_event_rows(&grant, "grant.revoked", "revoked", Some(REASON)).await?;
            // The tombstone and the app's event are one transaction; a redelivery writes neither.
            if self.store.revoke_grant(&grant_id, REASON, self.now().as_millis(), &events).await? {
                tracing::info!(grant_id = %grant_id, "grant revoked: the user removed the app at Zoom");
                self.audit_grant_event(&grant, "grant.revoked", Some(REASON));
            }
        }
        Ok(())
    }

    /// After a connect: create the provider webhooks the configuration asks for (Aircall).
    /// A failure is logged and recorded on the grant; the connection itself stands.
    pub(crate) async fn create_provider_webhooks(&self, grant_id: &str, connection: &NewConnection<'_>) {
        let Some(events) = &connection.config.provider_webhook_events else { return };
        if connection.provider.definition.inbound_webhooks != Some(InboundWebhooks::AircallToken) {
            return;
        }
        // A reconnect keeps the webhook created the first time.
        if self.store.provider_webhook_remote_ids(grant_id).await.is_ok_and(|ids| !ids.is_empty()) {
            return;
        }
        let target = match self.public_url().join(&format!("webhooks/aircall/{}", connection.config.id)) {
            Ok(url) => url.to_string(),
            Err(_) => return,
        };
        let created = self
            .provider_http
            .create_webhook(connection.provider, &connection.tokens.access_token, &target, events)
            .await;
        let result = match created {
            Ok(webhook) => {
                let id = IdKind::ProviderWebhook.generate();
                match self
                    .keys
                    .seal(
                        &SealContext::new("provider_webhooks", &id, "token"),
                        webhook.token.expose_secret().as_bytes(),
                    )
                    .await
                {
                    Ok(sealed) => {
                        let record = ProviderWebhookRecord {
                            id,
                            grant_id: grant_id.to_owned(),
                            provider_config_id: connection.config.id.clone(),
                            remote_id: webhook.remote_id,
                            token_hash: hash_secret(AIRCALL_TOKEN_PURPOSE, webhook.token.expose_secret()),
                            token: sealed,
                            created_at: self.now().as_millis(),
                        };
                        self.store.insert_provider_webhook(&record).await.map_err(ServiceError::from)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(ServiceError::Internal(e.to_string())),
        };
        if let Err(error) = result {
            tracing::warn!(grant_id, error = %error, "could not create the provider webhook");
        }
    }

    /// `POST /webhooks/aircall/{config_id}`: routes an Aircall event to its grant's app.
    pub async fn handle_aircall_webhook(&self, config_id: &str, body: &[u8]) -> Result<(), ServiceError> {
        let config = self.inbound_config(config_id, InboundWebhooks::AircallToken).await?;
        let mut event: Value = serde_json::from_slice(body)
            .map_err(|_| ServiceError::invalid("invalid_body", "the webhook body is not JSON"))?;
        let token = event.get("token").and_then(Value::as_str).ok_or_else(not_found)?.to_owned();
        let grant_id = self
            .store
            .grant_for_provider_webhook(&config.id, &hash_secret(AIRCALL_TOKEN_PURPOSE, &token))
            .await
            .map_err(|_| not_found())?;
        if let Some(object) = event.as_object_mut() {
            object.remove("token");
        }
        let grant = self.store.find_grant(&grant_id).await?;
        let data = json!({
            "grant_id": grant.id,
            "end_user_id": grant.end_user_id,
            "provider": grant.provider,
            "event": event.get("event").cloned().unwrap_or(Value::Null),
            "payload": event,
        });
        self.emit_event(&grant.app_id, "provider.event", data).await
    }
}
