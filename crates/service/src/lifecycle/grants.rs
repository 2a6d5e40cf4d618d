//! Grants: storing a connection's tokens, and reading grant metadata.

use secrecy::ExposeSecret;
use serde::Serialize;
use tokenvault_crypto::SealContext;
use tokenvault_providers::{Identity, RefreshStyle, ResolvedProvider, TokenSet};
use tokenvault_store::{GrantFilter, GrantRecord, ProviderConfigRecord, StoreError};

use crate::{CallContext, IdKind, ServiceError, Timestamp, Vault};

/// Everything a successful code exchange produced.
pub(crate) struct NewConnection<'a> {
    pub config: &'a ProviderConfigRecord,
    pub provider: &'a ResolvedProvider,
    pub identity: Identity,
    pub tokens: TokenSet,
}

impl NewConnection<'_> {
    /// Granted scopes: the provider's word when it gives one, else what was requested.
    pub(crate) fn scopes(&self) -> String {
        self.tokens.scope.clone().unwrap_or_else(|| self.config.scopes.join(" "))
    }

    /// The refresh token, unless the provider issues refresh tokens only with a scope that was
    /// not granted (Dialpad `offline_access`): then the grant is stored as non-refreshable.
    pub(crate) fn refresh_token(&self) -> Option<&str> {
        let rules = &self.provider.definition.token;
        if rules.refresh == RefreshStyle::None {
            return None;
        }
        self.tokens.refresh_token.as_ref().map(|t| t.expose_secret())
    }

    pub(crate) fn api_base_url(&self) -> Option<String> {
        self.tokens.api_base_url.clone().or_else(|| self.provider.default_api_base())
    }
}

/// A grant as the app sees it: metadata only, never a token.
#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    pub id: String,
    pub provider: String,
    pub provider_config_id: String,
    pub environment: String,
    pub end_user_id: String,
    pub account: AccountView,
    pub scopes: Vec<String>,
    /// `active`, `needs_reauth`, `revoke_failed` or `revoked`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub refreshable: bool,
    pub expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    pub connected_at: Timestamp,
    pub refreshed_at: Option<Timestamp>,
    /// When the background refresher will next refresh it (none: permanent or not refreshable).
    pub next_refresh_at: Option<Timestamp>,
    /// The last refresh or revocation failure, as a machine-readable code, while retries continue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Why the last provider call failed, in words: the endpoint (host and path), the HTTP
    /// status, the provider's error code and description, or the TLS verification failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_detail: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl From<GrantRecord> for GrantView {
    fn from(g: GrantRecord) -> Self {
        GrantView {
            refreshable: g.refresh_token.is_some(),
            id: g.id,
            provider: g.provider,
            provider_config_id: g.provider_config_id,
            environment: g.environment,
            end_user_id: g.end_user_id,
            account: AccountView {
                id: g.account_id,
                user_id: g.account_user_id,
                name: g.account_name,
                email: g.account_email,
            },
            scopes: g.scopes.split_whitespace().map(str::to_owned).collect(),
            status: g.status,
            status_reason: g.status_reason,
            expires_at: g.expires_at.map(Timestamp::from_millis),
            api_base_url: g.api_base_url,
            connected_at: Timestamp::from_millis(g.connected_at),
            refreshed_at: g.refreshed_at.map(Timestamp::from_millis),
            next_refresh_at: g.next_refresh_at.map(Timestamp::from_millis),
            last_error: g.last_error,
            last_error_detail: g.last_error_detail,
            created_at: Timestamp::from_millis(g.created_at),
            updated_at: Timestamp::from_millis(g.updated_at),
            revoked_at: g.revoked_at.map(Timestamp::from_millis),
        }
    }
}

/// Filters of a grant listing.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantListQuery {
    pub end_user_id: Option<String>,
    pub provider: Option<String>,
    pub status: Option<String>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

pub(crate) fn seal_context<'a>(grant_id: &'a str, field: &'a str) -> SealContext<'a> {
    SealContext::new("grants", grant_id, field)
}

impl Vault {
    /// Creates the grant for (app, end user, configuration, account), or reconnects the existing
    /// one with the new tokens. Returns the grant id.
    pub(crate) async fn store_grant(
        &self,
        app_id: &str,
        end_user_id: &str,
        connection: NewConnection<'_>,
    ) -> Result<String, ServiceError> {
        let account_key = connection.identity.key();
        // Two tries: a concurrent first connect of the same account may win the insert.
        for _ in 0..2 {
            let existing = self.store.find_grant_id(app_id, end_user_id, &connection.config.id, &account_key).await?;
            let grant_id = existing.clone().unwrap_or_else(|| IdKind::Grant.generate());
            let now = self.now().as_millis();
            let access = self
                .keys
                .seal(
                    &seal_context(&grant_id, "access_token"),
                    connection.tokens.access_token.expose_secret().as_bytes(),
                )
                .await?;
            let refresh = match connection.refresh_token() {
                Some(token) => Some(self.keys.seal(&seal_context(&grant_id, "refresh_token"), token.as_bytes()).await?),
                None => None,
            };
            let record = GrantRecord {
                id: grant_id.clone(),
                app_id: app_id.to_owned(),
                provider_config_id: connection.config.id.clone(),
                provider: connection.config.provider.clone(),
                environment: connection.config.environment.clone(),
                end_user_id: end_user_id.to_owned(),
                account_key: account_key.clone(),
                account_id: connection.identity.account_id.clone(),
                account_user_id: connection.identity.user_id.clone(),
                account_name: connection.identity.display_name.clone(),
                account_email: connection.identity.email.clone(),
                scopes: connection.scopes(),
                access_token: Some(access),
                refresh_token: refresh,
                token_type: connection.tokens.token_type.clone(),
                expires_at: connection.tokens.expires_at_ms,
                api_base_url: connection.api_base_url(),
                status: "active".into(),
                status_reason: None,
                connected_at: now,
                refreshed_at: None,
                created_at: now,
                updated_at: now,
                next_refresh_at: crate::lifecycle::schedule::next_refresh_at(
                    connection.tokens.expires_at_ms,
                    connection.refresh_token().is_some(),
                    connection
                        .provider
                        .definition
                        .token
                        .refresh_token_idle_lifetime_seconds
                        .map(std::time::Duration::from_secs),
                    now,
                ),
                refresh_failures: 0,
                retry_at: None,
                last_error: None,
                revoked_at: None,
                refresh_lease_until: None,
                refresh_sends_in_doubt: 0,
                // A reconnect keeps neither: the store starts the next generation and keeps what
                // it learnt about the provider's rotation.
                token_generation: 0,
                refresh_rotates: false,
                refresh_doubt_since: None,
                last_error_detail: None,
            };
            // The grant and its `grant.connected` event are stored together or not at all.
            let events = self.grant_event_rows(&record, "grant.connected", "active", None).await?;
            match self.store.upsert_grant_announcing(&record, &events).await {
                Ok(()) => {
                    if connection.provider.definition.reauthorization_invalidates_previous {
                        // The provider killed the older tokens of this account: say so, per grant.
                        for other_id in self.store.grants_for_account(&connection.config.id, &account_key).await? {
                            let other = self.store.find_grant(&other_id).await?;
                            if other_id != grant_id && other.status == "active" {
                                self.mark_needs_reauth(&other, "superseded_by_newer_authorization", None).await?;
                            }
                        }
                    }
                    tracing::info!(app_id, grant_id = %grant_id, provider = %record.provider, reconnect = existing.is_some(), "grant stored");
                    self.audit_grant_event(&record, "grant.connected", None);
                    self.create_provider_webhooks(&grant_id, &connection).await;
                    return Ok(grant_id);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::conflict(
            "concurrent_connect",
            "the same account was connected twice at the same time; try again",
        ))
    }

    /// A grant of `app_id`; for an agent, only one delegated to it.
    pub async fn get_grant(&self, app_id: &str, id: &str, context: &CallContext) -> Result<GrantView, ServiceError> {
        let id = IdKind::Grant.parse(id)?;
        self.delegation_for(context, &id).await?;
        Ok(self.store.get_grant(app_id, &id).await.map_err(ServiceError::from_store("grant"))?.into())
    }

    /// A page of the app's grants; for an agent, only those delegated to it.
    pub async fn list_grants(
        &self,
        app_id: &str,
        query: &GrantListQuery,
        context: &CallContext,
    ) -> Result<Vec<GrantView>, ServiceError> {
        let after = query.after.as_deref().map(|a| IdKind::Grant.parse(a)).transpose()?;
        if let Some(status) = &query.status
            && !["active", "needs_reauth", "revoke_failed", "revoked"].contains(&status.as_str())
        {
            return Err(ServiceError::invalid(
                "invalid_status",
                "`status` must be active, needs_reauth, revoke_failed or revoked",
            ));
        }
        let filter = GrantFilter {
            end_user_id: query.end_user_id.as_deref(),
            provider: query.provider.as_deref(),
            status: query.status.as_deref(),
        };
        let limit = i64::from(crate::PageSize::LIST.resolve(query.limit)?);
        if let Some(delegated) = self.delegated_grant_ids(context).await? {
            let mut ids: Vec<&String> = delegated.iter().filter(|id| after.as_ref().is_none_or(|a| *id > a)).collect();
            ids.sort();
            let mut page = Vec::new();
            for id in ids {
                if page.len() as i64 >= limit {
                    break;
                }
                let grant = match self.store.get_grant(app_id, id).await {
                    Ok(grant) => grant,
                    // A delegated managed secret, or a grant deleted since: not a grant to list.
                    Err(StoreError::NotFound) => continue,
                    Err(other) => return Err(other.into()),
                };
                let matches = filter.end_user_id.is_none_or(|u| u.is_empty() || u == grant.end_user_id)
                    && filter.provider.is_none_or(|p| p.is_empty() || p == grant.provider)
                    && filter.status.is_none_or(|s| s.is_empty() || s == grant.status);
                if matches {
                    page.push(GrantView::from(grant));
                }
            }
            return Ok(page);
        }
        Ok(self
            .store
            .list_grants(app_id, &filter, after.as_deref(), limit)
            .await?
            .into_iter()
            .map(GrantView::from)
            .collect())
    }
}
