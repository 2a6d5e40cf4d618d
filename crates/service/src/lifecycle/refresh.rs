//! Refresh that never loses a rotating refresh token.
//!
//! One refresh per grant at a time: in-process, callers queue on a per-grant mutex; across
//! instances, a lease row in the database (`refresh_lease_owner/until`, taken with a conditional
//! UPDATE, renewed by the holder while it works) that a crashed holder can block for at most the
//! lease duration. The new token pair is written in one UPDATE that also checks the token
//! generation refreshed is still the stored one (never the ciphertext, which a key rotation may
//! re-seal meanwhile), before any caller sees the new access token; every other outcome write
//! also checks the lease is still ours.
//!
//! A pair the provider issued is never thrown away: if the database cannot take it right now, it
//! is kept in memory under the grant's lock and written again until it lands (see
//! [`crate::lifecycle::persist`]), and nothing in this process sends the old token meanwhile.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokenvault_providers::{ProviderError, RefreshStyle};
use tokenvault_store::{GrantRecord, RefreshHold};

use crate::lifecycle::grants::seal_context;
use crate::lifecycle::lease_heartbeat::LeaseHeartbeat;
use crate::lifecycle::schedule::{backoff, next_refresh_at};
use crate::{ServiceError, Vault};

/// Why a refresh is attempted, which decides when it is no longer needed.
#[derive(Debug, Clone)]
pub enum RefreshTrigger {
    /// A caller saw this token generation expiring: done once the stored generation differs.
    Caller { seen_generation: i64 },
    /// The background schedule: done once `next_refresh_at` moved into the future.
    Schedule,
    /// A disconnect found the access token refused: like `Caller`, and also for a grant that
    /// is `revoke_failed` (its revocation is retried with the refreshed token).
    Revocation { seen_generation: i64 },
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
    pub(crate) fn is_expired(&self, grant: &GrantRecord) -> bool {
        grant.expires_at.is_some_and(|at| at <= self.now().as_millis())
    }

    /// Refreshes one grant, single-flight within this process and across instances.
    pub async fn refresh_grant(&self, grant_id: &str, trigger: RefreshTrigger) -> Result<RefreshOutcome, ServiceError> {
        let lock = self.refresh_locks.get(grant_id);
        // A refresh whose result is still being written holds this lock until it lands: wait a
        // while (at most one lease, and less than the API's 30 s request timeout), then tell the
        // caller to come back rather than hang on the database.
        let patience = self.config.refresh_lease.min(Duration::from_secs(20));
        let in_process = tokio::time::timeout(patience, lock.lock_owned())
            .await
            .map_err(|_| refresh_in_progress("a refresh of this grant is still being stored; retry shortly"))?;
        let deadline = std::time::Instant::now() + self.config.refresh_lease * 2;
        let mut first = true;
        loop {
            // Callers who queued behind a refresh find its result in memory; any later look (and
            // everything under the lease) reads the database.
            let cached = if std::mem::take(&mut first) { self.cache.grant_by_id(grant_id) } else { None };
            let grant = match cached {
                Some(grant) => grant,
                None => self.load_grant_by_id(grant_id).await.map_err(ServiceError::from_store("grant"))?,
            };
            let revoking = matches!(trigger, RefreshTrigger::Revocation { .. }) && grant.status == "revoke_failed";
            if grant.status != "active" && !revoking {
                return Ok(RefreshOutcome::NeedsReauth(grant.status_reason.unwrap_or(grant.status)));
            }
            // Someone (this process or another instance) refreshed since the trigger looked.
            let already = match &trigger {
                RefreshTrigger::Caller { seen_generation } | RefreshTrigger::Revocation { seen_generation } => {
                    grant.token_generation != *seen_generation
                }
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
                let current = self.load_grant_by_id(grant_id).await.map_err(ServiceError::from_store("grant"))?;
                if current.token_generation != grant.token_generation {
                    self.store.release_refresh_lease(grant_id, &self.instance_id).await?;
                    continue;
                }
                let app_id = current.app_id.clone();
                let outcome = self.refresh_holding_lease(current, in_process).await;
                if matches!(outcome, Ok(RefreshOutcome::Refreshed)) {
                    // One read of the stored result, for every caller waiting on it.
                    let _ = self.load_subject(&app_id, grant_id).await;
                }
                return outcome;
            }
            if std::time::Instant::now() > deadline {
                return Err(refresh_in_progress("another vault instance is refreshing this grant; retry shortly"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn refresh_holding_lease(
        &self,
        grant: GrantRecord,
        in_process: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<RefreshOutcome, ServiceError> {
        let heartbeat = LeaseHeartbeat::start(
            self.store.clone(),
            self.clock.clone(),
            grant.id.clone(),
            self.instance_id.clone(),
            self.config.refresh_lease,
        );
        let started = std::time::Instant::now();
        let result = self.refresh_with_lease(&grant, &heartbeat).await;
        let result = match result {
            Ok(Attempt::Done(outcome)) => Ok(outcome),
            Ok(Attempt::Issued(issued)) => self.persist_refresh(&grant, *issued, heartbeat, in_process).await,
            Err(error) => Err(error),
        };
        let outcome = match &result {
            Ok(RefreshOutcome::Refreshed) => Some("refreshed"),
            Ok(RefreshOutcome::AlreadyFresh) => None,
            Ok(RefreshOutcome::NeedsReauth(_)) => Some("needs_reauth"),
            Ok(RefreshOutcome::RetryLater { .. }) => Some("retry_later"),
            Err(error) => Some(crate::audit::error_code(error)),
        };
        if let Some(outcome) = outcome {
            self.metrics.refresh(&grant.provider, outcome, started.elapsed());
        }
        if result.is_err() {
            // Best effort: a lease left behind only delays the next refresh by its length.
            let _ = self.store.release_refresh_lease(&grant.id, &self.instance_id).await;
        }
        result
    }

    async fn refresh_with_lease(
        &self,
        grant: &GrantRecord,
        heartbeat: &LeaseHeartbeat,
    ) -> Result<Attempt, ServiceError> {
        let hold = RefreshHold { owner: &self.instance_id, generation: grant.token_generation };
        let Some(sealed_refresh) = grant.refresh_token.clone() else {
            // Not refreshable (Dialpad without offline_access): once expired, re-authorize.
            if self.is_expired(grant) {
                self.mark_needs_reauth_if(grant, "expired_without_refresh_token", None, Some(hold)).await?;
                return Ok(Attempt::Done(RefreshOutcome::NeedsReauth("expired_without_refresh_token".into())));
            }
            self.store.release_refresh_lease(&grant.id, &self.instance_id).await?;
            return Ok(Attempt::Done(RefreshOutcome::AlreadyFresh));
        };
        let config = self.store.find_provider_config(&grant.provider_config_id).await?;
        let (provider, credentials) = self.resolve_config(&config).await?;
        let refresh_token = self.keys.open(&seal_context(&grant.id, "refresh_token"), &sealed_refresh).await?;
        let refresh_token = SecretString::from(
            String::from_utf8(refresh_token.to_vec())
                .map_err(|_| ServiceError::Internal("refresh token not UTF-8".into()))?,
        );
        // Rotation is a property of the answers as well as of the catalog: once a refresh of this
        // grant brought a new refresh token, a lost answer is accounted for as with Zoom.
        let rotating = provider.definition.token.refresh == RefreshStyle::Rotating || grant.refresh_rotates;

        let grace = provider.definition.token.rotation_grace_seconds.map(|s| s as i64 * 1000);
        let sent = self
            .send_refresh(grant, hold, rotating, grace, heartbeat, (&provider, &credentials), &refresh_token)
            .await?;
        let Sent { result, in_doubt, within_grace } = sent;
        if heartbeat.is_lost() && result.is_err() {
            // Another instance owns the grant's refresh now: its outcome, not ours, counts.
            return Err(lease_lost());
        }
        match result {
            Ok(tokens) => {
                let rotated = tokens.refresh_token.as_ref().is_some_and(|new| {
                    !bool::from(new.expose_secret().as_bytes().ct_eq(refresh_token.expose_secret().as_bytes()))
                });
                let now = self.now().as_millis();
                let idle = provider.definition.token.refresh_token_idle_lifetime_seconds.map(Duration::from_secs);
                let next = next_refresh_at(tokens.expires_at_ms, tokens.refresh_token.is_some(), idle, now);
                Ok(Attempt::Issued(Box::new(IssuedPair { tokens, rotated, next_refresh_at: next, refreshed_at: now })))
            }
            Err(error @ ProviderError::InvalidGrant { .. }) => {
                // After a lost response, a rejection means the provider did rotate: the new token is gone.
                let reason = if in_doubt > 0 { "refresh_response_lost" } else { "refresh_token_rejected" };
                self.mark_needs_reauth_if(grant, reason, Some(&error), Some(hold)).await?;
                Ok(Attempt::Done(RefreshOutcome::NeedsReauth(reason.into())))
            }
            Err(error) if in_doubt > 0 && !within_grace => {
                // The one send allowed after a lost response did not bring a new pair: never a third.
                tracing::warn!(grant_id = %grant.id, provider = %grant.provider, error = %error, "retry after a lost refresh response failed; the old refresh token is not sent again");
                self.mark_needs_reauth_if(grant, "refresh_response_lost", Some(&error), Some(hold)).await?;
                Ok(Attempt::Done(RefreshOutcome::NeedsReauth("refresh_response_lost".into())))
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
                // A lost answer of this send is one more in doubt; any other answer settles it.
                let lost_now = rotating && matches!(error, ProviderError::ResponseLost { .. });
                let still_in_doubt = in_doubt + i64::from(lost_now);
                let detail = error.to_string();
                self.store
                    .record_refresh_failure(&grant.id, hold, retry_at, code, &detail, now, still_in_doubt)
                    .await?;
                tracing::warn!(grant_id = %grant.id, provider = %grant.provider, error = %error, retry_in_ms = delay.as_millis() as u64, "refresh failed; will retry");
                Ok(Attempt::Done(RefreshOutcome::RetryLater { retry_at }))
            }
        }
    }

    /// Sends the refresh request. For a rotating provider every send is first recorded on the
    /// grant as "in doubt" (so a holder dying mid-call is counted too), and a lost response is
    /// retried at once, but the stored refresh token is never sent more than [`MAX_SENDS_IN_DOUBT`]
    /// times without an answer that settles it, across passes, processes and restarts, unless
    /// the provider declares a rotation grace and the first unanswered send is within it (then
    /// the old token still works and is sent again). Returns the provider's answer, how many
    /// sends were in doubt before the one that produced it, and whether that is within grace.
    #[allow(clippy::too_many_arguments)]
    async fn send_refresh(
        &self,
        grant: &GrantRecord,
        hold: RefreshHold<'_>,
        rotating: bool,
        grace_ms: Option<i64>,
        heartbeat: &LeaseHeartbeat,
        (provider, credentials): (&tokenvault_providers::ResolvedProvider, &tokenvault_providers::ClientCredentials),
        refresh_token: &SecretString,
    ) -> Result<Sent, ServiceError> {
        let mut in_doubt = if rotating { grant.refresh_sends_in_doubt } else { 0 };
        let mut doubt_since = grant.refresh_doubt_since.filter(|_| in_doubt > 0);
        let mut retried_now = false;
        loop {
            if heartbeat.is_lost() {
                return Err(lease_lost());
            }
            let now = self.now().as_millis();
            let within_grace = grace_ms.is_some_and(|g| doubt_since.is_none_or(|since| now < since + g));
            if rotating {
                if in_doubt >= MAX_SENDS_IN_DOUBT && !within_grace {
                    let lost = ProviderError::ResponseLost {
                        reason: "earlier sends of this refresh token went unanswered".into(),
                    };
                    return Ok(Sent { result: Err(lost), in_doubt, within_grace });
                }
                let why = (in_doubt > 0).then_some("response_lost");
                if !self.store.record_refresh_send(&grant.id, hold, in_doubt + 1, why, now).await? {
                    return Err(lease_lost());
                }
                doubt_since.get_or_insert(now);
            }
            let result = self.provider_http.refresh(provider, credentials, refresh_token, self.now().as_millis()).await;
            match result {
                Err(ProviderError::ResponseLost { .. })
                    if rotating && !retried_now && (in_doubt + 1 < MAX_SENDS_IN_DOUBT || within_grace) =>
                {
                    // The provider may or may not have rotated: the old token is tried once more now.
                    tracing::warn!(grant_id = %grant.id, "refresh response lost; retrying once with the same refresh token");
                    in_doubt += 1;
                    retried_now = true;
                }
                result => return Ok(Sent { result, in_doubt, within_grace }),
            }
        }
    }

    /// Marks a grant `needs_reauth` for a reason found outside a refresh (a 401, a newer
    /// authorization); `detail` is the provider's answer that showed it, if any.
    pub(crate) async fn mark_needs_reauth(
        &self,
        grant: &GrantRecord,
        reason: &str,
        detail: Option<&ProviderError>,
    ) -> Result<(), ServiceError> {
        self.mark_needs_reauth_if(grant, reason, detail, None).await
    }

    /// With `hold`, as a refresh's outcome: a no-op unless that refresh (lease and token) is still current.
    async fn mark_needs_reauth_if(
        &self,
        grant: &GrantRecord,
        reason: &str,
        detail: Option<&ProviderError>,
        hold: Option<RefreshHold<'_>>,
    ) -> Result<(), ServiceError> {
        let events = self.grant_event_rows(grant, "grant.needs_reauth", "needs_reauth", Some(reason)).await?;
        let detail = detail.map(ToString::to_string);
        let now = self.now().as_millis();
        if self.store.mark_needs_reauth(&grant.id, reason, detail.as_deref(), now, hold, &events).await? {
            let detail = detail.as_deref().unwrap_or_default();
            tracing::warn!(grant_id = %grant.id, provider = %grant.provider, reason, detail, "grant needs re-authorization");
            self.audit_grant_event(grant, "grant.needs_reauth", Some(reason));
        }
        Ok(())
    }
}

/// How many sends of one rotating refresh token may go unanswered: the original and one retry
/// (quirk 11). Past that the grant needs re-authorization.
const MAX_SENDS_IN_DOUBT: i64 = 2;

/// What sending a refresh brought: the answer, the sends in doubt before it, and whether those
/// are still within the provider's rotation grace.
struct Sent {
    result: Result<tokenvault_providers::TokenSet, ProviderError>,
    in_doubt: i64,
    within_grace: bool,
}

/// How a refresh attempt under the lease ended: settled, or with a new pair the provider issued
/// that must now be stored.
enum Attempt {
    Done(RefreshOutcome),
    Issued(Box<IssuedPair>),
}

/// A token pair the provider issued, in the clear until it is sealed for the write that stores
/// it (sealing right before writing means the value is sealed by a key current at that moment,
/// however long the database kept it waiting).
pub(crate) struct IssuedPair {
    pub(crate) tokens: tokenvault_providers::TokenSet,
    pub(crate) rotated: bool,
    pub(crate) next_refresh_at: Option<i64>,
    pub(crate) refreshed_at: i64,
}

fn lease_lost() -> ServiceError {
    refresh_in_progress("another vault instance took over this grant's refresh; retry shortly")
}

fn refresh_in_progress(message: &str) -> ServiceError {
    ServiceError::Unavailable { code: "refresh_in_progress", message: message.into(), retry_after_seconds: Some(1) }
}

/// `last_error` of a grant whose token endpoint the egress guard refused.
pub(crate) const DESTINATION_NOT_ALLOWED: &str = "destination_not_allowed";

/// A short machine-readable name for a refresh failure (stored as `last_error`).
pub(crate) fn error_code(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::InvalidGrant { .. } => "invalid_grant",
        ProviderError::InvalidClient { .. } => "invalid_client",
        ProviderError::Rejected { .. } => "rejected",
        ProviderError::Unauthorized { .. } => "unauthorized",
        ProviderError::Transient { .. } => "provider_unavailable",
        ProviderError::ResponseLost { .. } => "response_lost",
        ProviderError::Tls { .. } => "tls_error",
        ProviderError::Protocol(_) => "protocol_error",
        ProviderError::Config(_) => "configuration_error",
        ProviderError::DestinationNotAllowed(_) => DESTINATION_NOT_ALLOWED,
    }
}
