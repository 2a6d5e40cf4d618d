//! Disconnect: revoke at the provider, then erase the tokens and keep a tombstone. If the
//! provider call fails the grant becomes `revoke_failed` with its tokens kept, so a retry can
//! finish the job; nothing is ever half-deleted. The tombstone and the `grant.revoked` event for
//! the app are written in one transaction.
//!
//! A disconnect is confirmed, never assumed: `revoked` means the provider confirmed it, or the
//! tokens are proven dead. A refreshable grant whose access token the provider refuses (Dialpad
//! answers 401 to an expired one, having revoked nothing) is refreshed and asked again; a refresh
//! answered `invalid_grant` proves the grant dead; anything else leaves it `revoke_failed`.

use secrecy::SecretString;
use tokenvault_providers::ProviderError;
use tokenvault_store::{GrantRecord, SPENT_TOKEN_REASONS};

use crate::audit::AuditEntry;
use crate::lifecycle::grants::{GrantView, seal_context};
use crate::{CallContext, IdKind, RefreshOutcome, RefreshTrigger, ServiceError, Vault};

/// The provider refused the access token at revocation, so nothing is known to be revoked.
fn unconfirmed(why: &str) -> ProviderError {
    ProviderError::Transient { reason: format!("the provider refused the access token {why}"), retry_after: None }
}

impl Vault {
    /// The audit row of a disconnect names who asked for it (actor, request id), whatever the outcome.
    pub async fn disconnect_grant(
        &self,
        app_id: &str,
        grant_id: &str,
        context: &CallContext,
    ) -> Result<GrantView, ServiceError> {
        let grant_id = IdKind::Grant.parse(grant_id)?;
        let lock = self.refresh_locks.get(&grant_id);
        let mut no_refresh_meanwhile = lock.clone().lock_owned().await;
        let mut grant = self.store.get_grant(app_id, &grant_id).await.map_err(ServiceError::from_store("grant"))?;
        if grant.status == "revoked" {
            return Ok(grant.into());
        }
        let mut revoked = self.revoke_at_provider(&grant).await;
        if let Err(ProviderError::Unauthorized { status: 401, .. }) = revoked {
            drop(no_refresh_meanwhile);
            let trigger = RefreshTrigger::Revocation { seen_generation: grant.token_generation };
            let refreshed = self.refresh_grant(&grant.id, trigger).await;
            no_refresh_meanwhile = lock.clone().lock_owned().await;
            grant = self.store.get_grant(app_id, &grant_id).await?;
            revoked = match refreshed {
                Ok(RefreshOutcome::Refreshed | RefreshOutcome::AlreadyFresh) => {
                    match self.revoke_at_provider(&grant).await {
                        Err(ProviderError::Unauthorized { .. }) => Err(unconfirmed("even after a refresh")),
                        other => other,
                    }
                }
                // The provider refused the refresh token as well: both tokens are dead.
                Ok(RefreshOutcome::NeedsReauth(reason)) if SPENT_TOKEN_REASONS.contains(&reason.as_str()) => Ok(()),
                Ok(_) => Err(unconfirmed("and no refreshed token could be had")),
                Err(error) => Err(unconfirmed(&format!("and the refresh failed: {error}"))),
            };
        }
        let _no_refresh_meanwhile = no_refresh_meanwhile;
        match revoked {
            Ok(()) => {
                // The tombstone, the erased webhooks and the app's event are one transaction.
                let events = self.grant_event_rows(&grant, "grant.revoked", "revoked", Some("disconnected")).await?;
                if self.store.revoke_grant(&grant.id, "disconnected", self.now().as_millis(), &events).await? {
                    tracing::info!(grant_id = %grant.id, provider = %grant.provider, "grant disconnected");
                    self.audit(AuditEntry::grant_event(&grant, "grant.revoked", Some("disconnected")).by(context));
                }
                Ok(self.store.get_grant(app_id, &grant_id).await?.into())
            }
            Err(error) => {
                let detail = error.to_string();
                let code = crate::lifecycle::refresh::error_code(&error);
                self.store.mark_revoke_failed(&grant.id, code, &detail, self.now().as_millis()).await?;
                let mut entry = AuditEntry::grant_event(&grant, "grant.revoked", Some("revoke_failed")).by(context);
                entry.record.outcome = "failure".into();
                self.audit(entry);
                tracing::warn!(grant_id = %grant.id, provider = %grant.provider, error = %detail, "revocation at the provider failed; tokens kept for a retry");
                Err(ServiceError::Unavailable {
                    code: "revoke_failed",
                    message: format!(
                        "the provider did not confirm the revocation ({detail}); the grant is `revoke_failed` and keeps its tokens: retry the disconnect"
                    ),
                    retry_after_seconds: Some(5),
                })
            }
        }
    }

    async fn revoke_at_provider(&self, grant: &GrantRecord) -> Result<(), tokenvault_providers::ProviderError> {
        let internal = |e: ServiceError| tokenvault_providers::ProviderError::Config(e.to_string());
        let config =
            self.store.find_provider_config(&grant.provider_config_id).await.map_err(|e| internal(e.into()))?;
        let (mut provider, credentials) = self.resolve_config(&config).await.map_err(internal)?;
        if let Some(base) = &grant.api_base_url {
            provider.endpoints.api_base_url = url::Url::parse(base).ok().or(provider.endpoints.api_base_url);
        }
        let Some(access) =
            self.open_grant_secret(grant, "access_token", grant.access_token.as_ref()).await.map_err(internal)?
        else {
            return Ok(());
        };
        let refresh =
            self.open_grant_secret(grant, "refresh_token", grant.refresh_token.as_ref()).await.map_err(internal)?;
        let webhook_ids = self.store.provider_webhook_remote_ids(&grant.id).await.map_err(|e| internal(e.into()))?;
        self.provider_http.revoke(&provider, &credentials, &access, refresh.as_ref(), &webhook_ids).await
    }

    pub(crate) async fn open_grant_secret(
        &self,
        grant: &GrantRecord,
        field: &'static str,
        sealed: Option<&Vec<u8>>,
    ) -> Result<Option<SecretString>, ServiceError> {
        let Some(sealed) = sealed else { return Ok(None) };
        let plain = self.keys.open(&seal_context(&grant.id, field), sealed).await?;
        let text = String::from_utf8(plain.to_vec())
            .map_err(|_| ServiceError::Internal("stored token is not UTF-8".into()))?;
        Ok(Some(SecretString::from(text)))
    }
}

impl Vault {
    /// Checks a grant's access token against the provider's who-am-I endpoint. A 401/403 marks
    /// the grant `needs_reauth` (for permanent tokens such as Aircall's this is how an uninstall
    /// shows). Returns the grant as it is afterwards.
    pub async fn verify_grant(&self, app_id: &str, grant_id: &str) -> Result<GrantView, ServiceError> {
        let grant_id = IdKind::Grant.parse(grant_id)?;
        let grant = self.store.get_grant(app_id, &grant_id).await.map_err(ServiceError::from_store("grant"))?;
        if grant.status != "active" {
            return Ok(grant.into());
        }
        let config = self.store.find_provider_config(&grant.provider_config_id).await?;
        let (provider, _) = self.resolve_config(&config).await?;
        let Some(access) = self.open_grant_secret(&grant, "access_token", grant.access_token.as_ref()).await? else {
            return Ok(grant.into());
        };
        match self.provider_http.fetch_identity(&provider, &access, grant.api_base_url.as_deref()).await {
            Ok(_) => {}
            // 401: the token is dead. A 403 (e.g. `insufficient_scope`) is about permissions.
            Err(error @ tokenvault_providers::ProviderError::Unauthorized { status: 401, .. }) => {
                self.mark_needs_reauth(&grant, "provider_rejected_token", Some(&error)).await?
            }
            Err(tokenvault_providers::ProviderError::Unauthorized { status, .. }) => {
                return Err(ServiceError::Forbidden {
                    code: "provider_forbidden",
                    message: format!(
                        "the provider answered {status}: the token lacks a permission; the grant is unchanged"
                    ),
                });
            }
            Err(error @ tokenvault_providers::ProviderError::DestinationNotAllowed(_)) => {
                return Err(crate::outbound::egress::refused_call(&format!(
                    "the provider could not be asked: {error}"
                )));
            }
            Err(error) => {
                return Err(ServiceError::Unavailable {
                    code: "provider_unavailable",
                    message: format!("the provider could not be asked: {error}"),
                    retry_after_seconds: Some(5),
                });
            }
        }
        Ok(self.store.get_grant(app_id, &grant_id).await?.into())
    }
}
