//! Storing a refresh result the provider has already issued.
//!
//! Once a provider answers a refresh, a rotating provider has already killed the token it
//! replaced: the new pair in hand is the grant. So it is never dropped because the database is
//! briefly unreachable. The write is retried on the spot for a moment; if the database is still
//! away, a background task keeps the pair (sealed, in memory) together with the grant's
//! in-process refresh lock and the lease heartbeat, and writes it again until it lands or a newer
//! token generation proves it obsolete. Meanwhile no caller in this process can send the old
//! refresh token (they wait on the lock, then get a 503), and the lease keeps other instances
//! away for as long as the database lets it be renewed. Only a crash loses the pair in memory;
//! then the send recorded as "in doubt" beforehand lets the next holder try once more (quirk 11).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokenvault_store::{GrantRecord, RefreshedTokens, StoreError};

use secrecy::ExposeSecret;

use crate::lifecycle::grants::seal_context;
use crate::lifecycle::lease_heartbeat::LeaseHeartbeat;
use crate::lifecycle::refresh::{IssuedPair, RefreshOutcome};
use crate::{ServiceError, Vault};

/// How long a caller waits while its refresh result is written again, before the write moves
/// to the background and the caller gets a 503.
const INLINE_BUDGET: Duration = Duration::from_secs(2);
/// The longest pause between two background attempts.
const MAX_BACKGROUND_DELAY: Duration = Duration::from_secs(5);

/// A refresh result not stored yet, and the grant it refreshes (at the generation it used).
struct PendingRefresh {
    grant: GrantRecord,
    issued: IssuedPair,
}

impl Vault {
    /// Stores `update` for `grant`, retrying as described in the module docs.
    pub(crate) async fn persist_refresh(
        &self,
        grant: &GrantRecord,
        issued: IssuedPair,
        heartbeat: LeaseHeartbeat,
        in_process: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<RefreshOutcome, ServiceError> {
        let pending = PendingRefresh { grant: grant.clone(), issued };
        let deadline = Instant::now() + INLINE_BUDGET;
        let mut delay = Duration::from_millis(50);
        let mut uncertain = false;
        loop {
            match self.try_store_refresh(&pending, uncertain).await {
                Ok(stored) => {
                    heartbeat.stop().await;
                    return self.refresh_settled(&pending, stored).await;
                }
                Err(error) => {
                    uncertain = true;
                    tracing::warn!(grant_id = %grant.id, error = %error, "refresh result not stored yet; retrying");
                }
            }
            if Instant::now() + delay > deadline {
                break;
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        let Some(vault) = self.self_ref.upgrade() else {
            return Err(database_unavailable());
        };
        tracing::error!(grant_id = %grant.id, "database unavailable: the refreshed tokens are kept in memory and stored as soon as it answers");
        vault.pending_refreshes.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            vault.keep_storing(pending, heartbeat, delay).await;
            drop(in_process);
            vault.pending_refreshes.fetch_sub(1, Ordering::SeqCst);
            vault.pending_refreshes_changed.notify_waiters();
        });
        Err(database_unavailable())
    }

    async fn keep_storing(&self, pending: PendingRefresh, heartbeat: LeaseHeartbeat, mut delay: Duration) {
        loop {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKGROUND_DELAY);
            match self.try_store_refresh(&pending, true).await {
                Ok(stored) => {
                    heartbeat.stop().await;
                    let _ = self.refresh_settled(&pending, stored).await;
                    return;
                }
                Err(ServiceError::Unavailable { .. }) if self.store.is_closed() => {
                    // Shutting down: the send stays recorded as in doubt, so the next holder may
                    // try the old token once more (quirk 11).
                    tracing::error!(grant_id = %pending.grant.id, "refresh result could not be stored before shutdown");
                    heartbeat.stop().await;
                    return;
                }
                Err(error) => {
                    tracing::warn!(grant_id = %pending.grant.id, error = %error, "refresh result still not stored; retrying")
                }
            }
        }
    }

    /// One attempt to write the result. `uncertain`: an earlier attempt failed in a way that may
    /// have committed it, so a lost compare-and-swap is checked against what is stored.
    async fn try_store_refresh(&self, pending: &PendingRefresh, uncertain: bool) -> Result<bool, ServiceError> {
        let PendingRefresh { grant, issued } = pending;
        let update = self.seal_refreshed(grant, issued).await?;
        let events = self.grant_event_rows(grant, "grant.refreshed", "active", None).await?;
        if self.store.complete_refresh(&grant.id, grant.token_generation, &update, &events).await? {
            return Ok(true);
        }
        if uncertain {
            let current = self.store.find_grant(&grant.id).await?;
            return Ok(current.token_generation == grant.token_generation + 1
                && current.access_token.as_deref() == Some(update.access_token.as_slice()));
        }
        Ok(false)
    }

    async fn seal_refreshed(&self, grant: &GrantRecord, issued: &IssuedPair) -> Result<RefreshedTokens, ServiceError> {
        let tokens = &issued.tokens;
        let access = self
            .keys
            .seal(&seal_context(&grant.id, "access_token"), tokens.access_token.expose_secret().as_bytes())
            .await?;
        let refresh = match &tokens.refresh_token {
            Some(t) => {
                Some(self.keys.seal(&seal_context(&grant.id, "refresh_token"), t.expose_secret().as_bytes()).await?)
            }
            None => None,
        };
        Ok(RefreshedTokens {
            access_token: access,
            refresh_token: refresh,
            expires_at: tokens.expires_at_ms,
            api_base_url: tokens.api_base_url.clone(),
            scopes: tokens.scope.clone(),
            next_refresh_at: issued.next_refresh_at,
            refreshed_at: issued.refreshed_at,
            rotated: issued.rotated,
        })
    }

    async fn refresh_settled(&self, pending: &PendingRefresh, stored: bool) -> Result<RefreshOutcome, ServiceError> {
        let grant = &pending.grant;
        if stored {
            tracing::info!(grant_id = %grant.id, provider = %grant.provider, "grant refreshed");
            self.audit_grant_event(grant, "grant.refreshed", None);
            return Ok(RefreshOutcome::Refreshed);
        }
        // A newer token generation (a reconnect, or a refresh by another holder after ours lost
        // its lease) is stored: it, not this older result, is the grant now.
        tracing::warn!(grant_id = %grant.id, "refresh result superseded by a newer token generation");
        self.store.release_refresh_lease(&grant.id, &self.instance_id).await?;
        Ok(RefreshOutcome::AlreadyFresh)
    }

    /// Waits until refresh results kept in memory are stored, or `limit` passed; returns how
    /// many are still pending. Called on shutdown before the database pool closes.
    pub async fn wait_for_pending_refreshes(&self, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.pending_refreshes_changed.notified();
            let pending = self.pending_refreshes.load(Ordering::SeqCst);
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                return pending;
            }
            let _ = tokio::time::timeout_at(deadline, changed).await;
        }
    }
}

fn database_unavailable() -> ServiceError {
    ServiceError::from(StoreError::Unavailable("refresh result not stored yet".into()))
}
