//! Fresh tokens: retrieval, and refresh that never loses a rotating refresh token.
//!
//! One refresh per grant at a time: in-process, callers queue on a per-grant mutex; across
//! instances, a lease row in the database (`refresh_lease_owner/until`, taken with a conditional
//! UPDATE, renewed by the holder while it works) that a crashed holder can block for at most the
//! lease duration. The new token pair is written in one UPDATE that also checks the refresh token
//! used is still the stored one, before any caller sees the new access token; every other outcome
//! write also checks the lease is still ours.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokenvault_providers::{ProviderError, RefreshStyle};
use tokenvault_store::{GrantRecord, RefreshHold, RefreshedTokens};

use crate::grants::seal_context;
use crate::lease_heartbeat::LeaseHeartbeat;
use crate::schedule::{backoff, next_refresh_at};
use crate::{IdKind, ServiceError, Timestamp, Vault};

/// A usable access token, as `POST /v1/grants/{id}/token` returns it.
#[derive(Debug, Serialize)]
pub struct AccessToken {
    pub grant_id: String,
    #[serde(serialize_with = "expose")]
    pub access_token: SecretString,
    pub token_type: String,
    pub expires_at: Option<Timestamp>,
    pub scopes: Vec<String>,
    /// The API base this credential is for (Zoom: the grant's `api_url`).
    pub api_base_url: Option<String>,
}

fn expose<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

/// Why a refresh is attempted, which decides when it is no longer needed.
#[derive(Debug, Clone)]
pub enum RefreshTrigger {
    /// A caller saw this (sealed) access token expiring: done once the stored token differs.
    Caller { seen_access_token: Option<Vec<u8>> },
    /// The background schedule: done once `next_refresh_at` moved into the future.
    Schedule,
}

/// What a refresh attempt ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    Refreshed,
    /// Someone else refreshed meanwhile, or the token was fresh enough already.
    AlreadyFresh,
    /// The provider killed the grant (or it cannot be refreshed): it is now `needs_reauth`.
    NeedsReauth(String),
    /// A temporary failure; retried at the given time.
    RetryLater {
        retry_at: i64,
    },
}

impl Vault {
    /// A valid access token for a grant of `app_id`, refreshed first if it expires within the
    /// configured margin. Concurrent callers share one refresh. Policies apply (a grant may be
    /// usable only through the proxy) and the retrieval is audited.
    pub async fn get_token(
        &self,
        app_id: &str,
        grant_id: &str,
        context: &crate::CallContext,
    ) -> Result<AccessToken, ServiceError> {
        let grant_id = IdKind::Grant.parse(grant_id)?;
        let grant = self.store.get_grant(app_id, &grant_id).await.map_err(ServiceError::from_store("grant"))?;
        let scope = crate::policies::PolicyScope::of_grant(&grant);
        let checked = self.check_policies(&scope, crate::policies::Access::Token, context).await;
        let (outcome, decision) = match checked {
            Ok(decision) => (self.fresh_grant(grant.clone()).await, Some(decision)),
            Err(denied) => (Err(denied), None),
        };
        let error = outcome.as_ref().err();
        self.audit(crate::audit::AuditEntry::for_grant(&grant, "token.retrieved", error, decision, context));
        self.access_token_of(&outcome?).await
    }

    /// The grant with a usable access token, refreshed first if needed.
    /// `grant` is the record the caller just read (for its policy check): it is read again only
    /// after a refresh, so a token served without refresh costs one grant read.
    pub(crate) async fn fresh_grant(&self, mut grant: GrantRecord) -> Result<GrantRecord, ServiceError> {
        ensure_usable(&grant)?;
        if self.needs_refresh(&grant) {
            let outcome = self
                .refresh_grant(&grant.id, RefreshTrigger::Caller { seen_access_token: grant.access_token.clone() })
                .await?;
            grant = self.store.get_grant(&grant.app_id, &grant.id).await.map_err(ServiceError::from_store("grant"))?;
            ensure_usable(&grant)?;
            if let RefreshOutcome::RetryLater { retry_at } = outcome
                && self.is_expired(&grant)
            {
                if grant.last_error.as_deref() == Some(DESTINATION_NOT_ALLOWED) {
                    return Err(crate::egress::refused_call(
                        "the provider's token endpoint is at an address the egress guard refuses, so this grant cannot be refreshed",
                    ));
                }
                let wait = ((retry_at - self.now().as_millis()).max(1000) + 999) / 1000;
                return Err(ServiceError::Unavailable {
                    code: "provider_unavailable",
                    message: "the provider could not refresh this grant right now; retry later".into(),
                    retry_after_seconds: Some(wait as u64),
                });
            }
        }
        Ok(grant)
    }

    pub(crate) async fn access_token_of(&self, grant: &GrantRecord) -> Result<AccessToken, ServiceError> {
        let sealed = grant
            .access_token
            .as_deref()
            .ok_or_else(|| ServiceError::Internal("active grant without access token".into()))?;
        let token = self.keys.open(&seal_context(&grant.id, "access_token"), sealed).await?;
        let token =
            String::from_utf8(token.to_vec()).map_err(|_| ServiceError::Internal("access token not UTF-8".into()))?;
        Ok(AccessToken {
            grant_id: grant.id.clone(),
            access_token: SecretString::from(token),
            token_type: "bearer".into(),
            expires_at: grant.expires_at.map(Timestamp::from_millis),
            scopes: grant.scopes.split_whitespace().map(str::to_owned).collect(),
            api_base_url: grant.api_base_url.clone(),
        })
    }

    fn needs_refresh(&self, grant: &GrantRecord) -> bool {
        let margin = self.config.refresh_margin.as_millis() as i64;
        grant.expires_at.is_some_and(|at| at <= self.now().as_millis() + margin)
    }

    fn is_expired(&self, grant: &GrantRecord) -> bool {
        grant.expires_at.is_some_and(|at| at <= self.now().as_millis())
    }

    /// Refreshes one grant, single-flight within this process and across instances.
    pub async fn refresh_grant(&self, grant_id: &str, trigger: RefreshTrigger) -> Result<RefreshOutcome, ServiceError> {
        let lock = self.refresh_locks.get(grant_id);
        let _in_process = lock.lock().await;
        let deadline = std::time::Instant::now() + self.config.refresh_lease * 2;
        loop {
            let grant = self.store.find_grant(grant_id).await.map_err(ServiceError::from_store("grant"))?;
            if grant.status != "active" {
                return Ok(RefreshOutcome::NeedsReauth(grant.status_reason.unwrap_or(grant.status)));
            }
            // Someone (this process or another instance) refreshed since the trigger looked.
            let already = match &trigger {
                RefreshTrigger::Caller { seen_access_token } => grant.access_token != *seen_access_token,
                RefreshTrigger::Schedule => grant.next_refresh_at.is_none_or(|at| at > self.now().as_millis()),
            };
            if already {
                return Ok(RefreshOutcome::AlreadyFresh);
            }
            if let Some(retry_at) = grant.retry_at.filter(|at| *at > self.now().as_millis()) {
                return Ok(RefreshOutcome::RetryLater { retry_at });
            }
            let now = self.now().as_millis();
            let until = now + self.config.refresh_lease.as_millis() as i64;
            if self.store.try_acquire_refresh_lease(grant_id, &self.instance_id, now, until).await? {
                // The snapshot above may predate a refresh another instance finished just before
                // we took the lease: look again, under the lease, before spending the token.
                let current = self.store.find_grant(grant_id).await.map_err(ServiceError::from_store("grant"))?;
                if current.access_token != grant.access_token || current.refresh_token != grant.refresh_token {
                    self.store.release_refresh_lease(grant_id, &self.instance_id).await?;
                    continue;
                }
                return self.refresh_holding_lease(current).await;
            }
            if std::time::Instant::now() > deadline {
                return Err(ServiceError::Unavailable {
                    code: "refresh_in_progress",
                    message: "another vault instance is refreshing this grant; retry shortly".into(),
                    retry_after_seconds: Some(1),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn refresh_holding_lease(&self, grant: GrantRecord) -> Result<RefreshOutcome, ServiceError> {
        let heartbeat = LeaseHeartbeat::start(
            self.store.clone(),
            self.clock.clone(),
            grant.id.clone(),
            self.instance_id.clone(),
            self.config.refresh_lease,
        );
        let result = self.refresh_with_lease(&grant, &heartbeat).await;
        heartbeat.stop().await;
        if result.is_err() {
            self.store.release_refresh_lease(&grant.id, &self.instance_id).await?;
        }
        result
    }

    async fn refresh_with_lease(
        &self,
        grant: &GrantRecord,
        heartbeat: &LeaseHeartbeat,
    ) -> Result<RefreshOutcome, ServiceError> {
        let hold = RefreshHold { owner: &self.instance_id, refresh_token: grant.refresh_token.as_deref() };
        let Some(sealed_refresh) = grant.refresh_token.clone() else {
            // Not refreshable (Dialpad without offline_access): once expired, re-authorize.
            if self.is_expired(grant) {
                self.mark_needs_reauth_if(grant, "expired_without_refresh_token", Some(hold)).await?;
                return Ok(RefreshOutcome::NeedsReauth("expired_without_refresh_token".into()));
            }
            self.store.release_refresh_lease(&grant.id, &self.instance_id).await?;
            return Ok(RefreshOutcome::AlreadyFresh);
        };
        let config = self.store.find_provider_config(&grant.provider_config_id).await?;
        let (provider, credentials) = self.resolve_config(&config).await?;
        let refresh_token = self.keys.open(&seal_context(&grant.id, "refresh_token"), &sealed_refresh).await?;
        let refresh_token = SecretString::from(
            String::from_utf8(refresh_token.to_vec())
                .map_err(|_| ServiceError::Internal("refresh token not UTF-8".into()))?,
        );
        let rotating = provider.definition.token.refresh == RefreshStyle::Rotating;

        let (result, in_doubt) = self
            .send_refresh(grant, &sealed_refresh, rotating, heartbeat, (&provider, &credentials), &refresh_token)
            .await?;
        if heartbeat.is_lost() && result.is_err() {
            // Another instance owns the grant's refresh now: its outcome, not ours, counts.
            return Err(lease_lost());
        }
        match result {
            Ok(tokens) => {
                let now = self.now().as_millis();
                let access = self
                    .keys
                    .seal(&seal_context(&grant.id, "access_token"), tokens.access_token.expose_secret().as_bytes())
                    .await?;
                let new_refresh = match &tokens.refresh_token {
                    Some(t) => Some(
                        self.keys.seal(&seal_context(&grant.id, "refresh_token"), t.expose_secret().as_bytes()).await?,
                    ),
                    None => None,
                };
                let refreshable = new_refresh.is_some();
                let idle = provider.definition.token.refresh_token_idle_lifetime_seconds.map(Duration::from_secs);
                let update = RefreshedTokens {
                    access_token: access,
                    refresh_token: new_refresh,
                    expires_at: tokens.expires_at_ms,
                    api_base_url: tokens.api_base_url.clone(),
                    scopes: tokens.scope.clone(),
                    next_refresh_at: next_refresh_at(tokens.expires_at_ms, refreshable, idle, now),
                    refreshed_at: now,
                };
                let events = self.grant_event_rows(grant, "grant.refreshed", "active", None).await?;
                if !self.store.complete_refresh(&grant.id, &sealed_refresh, &update, &events).await? {
                    // Only if our lease was lost and another instance refreshed first: never overwrite a newer pair.
                    tracing::error!(grant_id = %grant.id, "refresh result not stored: the grant changed meanwhile");
                    return Ok(RefreshOutcome::AlreadyFresh);
                }
                tracing::info!(grant_id = %grant.id, provider = %grant.provider, "grant refreshed");
                self.audit_grant_event(grant, "grant.refreshed", None);
                Ok(RefreshOutcome::Refreshed)
            }
            Err(ProviderError::InvalidGrant { .. }) => {
                // After a lost response, a rejection means the provider did rotate: the new token is gone.
                let reason = if in_doubt > 0 { "refresh_response_lost" } else { "refresh_token_rejected" };
                self.mark_needs_reauth_if(grant, reason, Some(hold)).await?;
                Ok(RefreshOutcome::NeedsReauth(reason.into()))
            }
            Err(error) if in_doubt > 0 => {
                // The one send allowed after a lost response did not bring a new pair: never a third.
                tracing::warn!(grant_id = %grant.id, provider = %grant.provider, error = %error, "retry after a lost refresh response failed; the old refresh token is not sent again");
                self.mark_needs_reauth_if(grant, "refresh_response_lost", Some(hold)).await?;
                Ok(RefreshOutcome::NeedsReauth("refresh_response_lost".into()))
            }
            Err(error) => {
                let retry_after = match &error {
                    ProviderError::Transient { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let delay = backoff(grant.refresh_failures, retry_after);
                let now = self.now().as_millis();
                let retry_at = now + delay.as_millis() as i64;
                let code = error_code(&error);
                self.store.record_refresh_failure(&grant.id, hold, retry_at, code, now).await?;
                tracing::warn!(grant_id = %grant.id, provider = %grant.provider, error = %error, retry_in_ms = delay.as_millis() as u64, "refresh failed; will retry");
                Ok(RefreshOutcome::RetryLater { retry_at })
            }
        }
    }

    /// Sends the refresh request. For a rotating provider every send is first recorded on the
    /// grant as "in doubt" (so a holder dying mid-call is counted too), and a lost response is
    /// retried at once, but the stored refresh token is never sent more than [`MAX_SENDS_IN_DOUBT`]
    /// times without an answer that settles it, across passes, processes and restarts. Returns the
    /// provider's answer and how many sends were in doubt before the one that produced it.
    async fn send_refresh(
        &self,
        grant: &GrantRecord,
        sealed_refresh: &[u8],
        rotating: bool,
        heartbeat: &LeaseHeartbeat,
        (provider, credentials): (&tokenvault_providers::ResolvedProvider, &tokenvault_providers::ClientCredentials),
        refresh_token: &SecretString,
    ) -> Result<(Result<tokenvault_providers::TokenSet, ProviderError>, i64), ServiceError> {
        let mut in_doubt = if rotating { grant.refresh_sends_in_doubt } else { 0 };
        loop {
            if heartbeat.is_lost() {
                return Err(lease_lost());
            }
            if rotating {
                if in_doubt >= MAX_SENDS_IN_DOUBT {
                    let lost = ProviderError::ResponseLost {
                        reason: "earlier sends of this refresh token went unanswered".into(),
                    };
                    return Ok((Err(lost), in_doubt));
                }
                let why = (in_doubt > 0).then_some("response_lost");
                let recorded = self
                    .store
                    .record_refresh_send(&grant.id, &self.instance_id, sealed_refresh, in_doubt + 1, why)
                    .await?;
                if !recorded {
                    return Err(lease_lost());
                }
            }
            let result = self.provider_http.refresh(provider, credentials, refresh_token, self.now().as_millis()).await;
            match result {
                Err(ProviderError::ResponseLost { .. }) if rotating && in_doubt + 1 < MAX_SENDS_IN_DOUBT => {
                    // The provider may or may not have rotated: the old token is tried once more, never again.
                    tracing::warn!(grant_id = %grant.id, "refresh response lost; retrying once with the same refresh token");
                    in_doubt += 1;
                }
                result => return Ok((result, in_doubt)),
            }
        }
    }

    /// Marks a grant `needs_reauth` for a reason found outside a refresh (a 401, a newer authorization).
    pub(crate) async fn mark_needs_reauth(&self, grant: &GrantRecord, reason: &str) -> Result<(), ServiceError> {
        self.mark_needs_reauth_if(grant, reason, None).await
    }

    /// With `hold`, as a refresh's outcome: a no-op unless that refresh (lease and token) is still current.
    async fn mark_needs_reauth_if(
        &self,
        grant: &GrantRecord,
        reason: &str,
        hold: Option<RefreshHold<'_>>,
    ) -> Result<(), ServiceError> {
        let events = self.grant_event_rows(grant, "grant.needs_reauth", "needs_reauth", Some(reason)).await?;
        if self.store.mark_needs_reauth(&grant.id, reason, self.now().as_millis(), hold, &events).await? {
            tracing::warn!(grant_id = %grant.id, provider = %grant.provider, reason, "grant needs re-authorization");
            self.audit_grant_event(grant, "grant.needs_reauth", Some(reason));
        }
        Ok(())
    }
}

/// How many sends of one rotating refresh token may go unanswered: the original and one retry
/// (quirk 11). Past that the grant needs re-authorization.
const MAX_SENDS_IN_DOUBT: i64 = 2;

fn lease_lost() -> ServiceError {
    ServiceError::Unavailable {
        code: "refresh_in_progress",
        message: "another vault instance took over this grant's refresh; retry shortly".into(),
        retry_after_seconds: Some(1),
    }
}

fn ensure_usable(grant: &GrantRecord) -> Result<(), ServiceError> {
    match grant.status.as_str() {
        "active" => Ok(()),
        "needs_reauth" => Err(ServiceError::conflict(
            "grant_needs_reauth",
            format!(
                "the grant needs re-authorization ({}); connect the account again",
                grant.status_reason.as_deref().unwrap_or("unknown reason")
            ),
        )),
        "revoke_failed" => {
            Err(ServiceError::conflict("grant_revoke_failed", "the grant is being disconnected; retry the disconnect"))
        }
        _ => Err(ServiceError::Gone { code: "grant_revoked", message: "the grant was revoked".into() }),
    }
}

/// `last_error` of a grant whose token endpoint the egress guard refused.
const DESTINATION_NOT_ALLOWED: &str = "destination_not_allowed";

/// A short machine-readable name for a refresh failure (stored as `last_error`).
fn error_code(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::InvalidGrant { .. } => "invalid_grant",
        ProviderError::InvalidClient { .. } => "invalid_client",
        ProviderError::Rejected { .. } => "rejected",
        ProviderError::Unauthorized { .. } => "unauthorized",
        ProviderError::Transient { .. } => "provider_unavailable",
        ProviderError::ResponseLost { .. } => "response_lost",
        ProviderError::Protocol(_) => "protocol_error",
        ProviderError::Config(_) => "configuration_error",
        ProviderError::DestinationNotAllowed(_) => DESTINATION_NOT_ALLOWED,
    }
}
