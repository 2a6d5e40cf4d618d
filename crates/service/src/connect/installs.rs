//! Installs that start at the provider (Aircall's dashboard opens the app's install URI).
//!
//! The rule: such a connection never becomes a grant by itself. The vault only runs the flow if
//! the app has set an `install_return_url`; after the code exchange it holds the tokens sealed
//! as a *pending install* and sends the browser to that URL with a one-time `claim` token. The
//! app, which knows who is logged in, claims it for one of its end users within 15 minutes
//! (`POST /v1/installs/claim`). Unclaimed installs have their sealed tokens erased by a periodic
//! sweep ([`Vault::run_install_sweeper`]), so no token outlives its claim window by more than one
//! sweep interval. So every grant has an owner, and no ownerless token is kept.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokenvault_crypto::SealContext;
use tokenvault_store::PendingInstallRecord;
use url::Url;

use crate::connect::sessions::{BrowserError, ConnectStart, validate_end_user_id};
use crate::lifecycle::grants::NewConnection;
use crate::values::secrets::{hash_secret, random_secret};
use crate::values::urls::with_params;
use crate::{IdKind, ServiceError, Vault};

const CLAIM_PURPOSE: &str = "tokenvault/install-claim";
const CLAIM_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How often unclaimed installs are looked for: tokens outlive their window by at most this.
pub const INSTALL_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimInstallInput {
    pub claim: String,
    pub end_user_id: String,
}

#[derive(Debug, Serialize)]
pub struct ClaimedInstall {
    pub grant_id: String,
}

fn install_context<'a>(id: &'a str, field: &'a str) -> SealContext<'a> {
    SealContext::new("pending_installs", id, field)
}

impl Vault {
    /// `GET /connect/install/{config_id}`: the provider's dashboard starts an install.
    pub async fn start_install(&self, config_id: &str) -> Result<ConnectStart, BrowserError> {
        let not_found = || BrowserError::new(404, "unknown_install", "this install link is not valid");
        let config_id = IdKind::ProviderConfig.parse(config_id).map_err(|_| not_found())?;
        let config = self.store.find_provider_config(&config_id).await.map_err(|_| not_found())?;
        let supports = self.catalog().get(&config.provider).is_some_and(|d| d.supports_install_uri);
        if !supports {
            return Err(not_found());
        }
        let app = self.store.get_app(&config.app_id).await.map_err(ServiceError::from)?;
        if app.install_return_url.is_none() {
            return Err(BrowserError::new(
                403,
                "installs_not_enabled",
                "this app does not accept installs started from the provider; connect from the app instead",
            ));
        }
        self.erase_expired_installs().await?;
        self.begin_flow(&config.app_id, None, &config).await
    }

    /// Seals a completed install's tokens and returns the URL the browser goes to next.
    pub(crate) async fn hold_install(
        &self,
        app_id: &str,
        connection: NewConnection<'_>,
    ) -> Result<String, ServiceError> {
        let app = self.store.get_app(app_id).await?;
        let return_url = app.install_return_url.ok_or_else(|| {
            ServiceError::invalid("installs_not_enabled", "the app turned installs off during the install")
        })?;
        let id = IdKind::PendingInstall.generate();
        let claim = format!("tvi_{}", random_secret());
        let now = self.now();
        let access = self
            .keys
            .seal(&install_context(&id, "access_token"), connection.tokens.access_token.expose_secret().as_bytes())
            .await?;
        let refresh = match connection.refresh_token() {
            Some(token) => Some(self.keys.seal(&install_context(&id, "refresh_token"), token.as_bytes()).await?),
            None => None,
        };
        let record = PendingInstallRecord {
            id: id.clone(),
            app_id: app_id.to_owned(),
            provider_config_id: connection.config.id.clone(),
            claim_hash: hash_secret(CLAIM_PURPOSE, &claim),
            access_token: Some(access),
            refresh_token: refresh,
            token_type: connection.tokens.token_type.clone(),
            expires_at: connection.tokens.expires_at_ms,
            scopes: connection.scopes(),
            api_base_url: connection.api_base_url(),
            account_key: connection.identity.key(),
            account_id: connection.identity.account_id.clone(),
            account_user_id: connection.identity.user_id.clone(),
            account_name: connection.identity.display_name.clone(),
            account_email: connection.identity.email.clone(),
            claim_expires_at: now.plus(CLAIM_WINDOW).as_millis(),
            created_at: now.as_millis(),
            claimed_at: None,
        };
        self.store.insert_pending_install(&record).await?;
        tracing::info!(app_id, install_id = %id, "install held for claiming");
        let url = Url::parse(&return_url).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(with_params(url, &[("status", "install_pending"), ("install_id", &id), ("claim", &claim)]).to_string())
    }

    /// The app binds a pending install to one of its end users, creating the grant.
    pub async fn claim_install(&self, app_id: &str, input: ClaimInstallInput) -> Result<ClaimedInstall, ServiceError> {
        let end_user_id = validate_end_user_id(&input.end_user_id)?;
        // Another app's claim is indistinguishable from a made-up one: the lookup is app-scoped.
        let unknown = || ServiceError::NotFound { what: "install claim" };
        if !input.claim.starts_with("tvi_") || input.claim.len() > 100 {
            return Err(unknown());
        }
        let pending = self
            .store
            .find_pending_install(app_id, &hash_secret(CLAIM_PURPOSE, &input.claim))
            .await
            .map_err(ServiceError::from_store("install claim"))?;
        let expired = || ServiceError::Gone {
            code: "claim_expired",
            message: "the install was not claimed within 15 minutes and its tokens were erased; install again".into(),
        };
        if pending.claimed_at.is_some() {
            return Err(ServiceError::conflict("claim_already_used", "this install was already claimed"));
        }
        let access_sealed = match pending.access_token.clone() {
            Some(sealed) if pending.claim_expires_at > self.now().as_millis() => sealed,
            _ => return Err(expired()),
        };
        let access = self.keys.open(&install_context(&pending.id, "access_token"), &access_sealed).await?;
        let refresh = match &pending.refresh_token {
            Some(sealed) => Some(self.keys.open(&install_context(&pending.id, "refresh_token"), sealed).await?),
            None => None,
        };
        if !self.store.claim_pending_install(&pending.id, self.now().as_millis()).await? {
            // Lost a race with another claim or with the window closing.
            return Err(ServiceError::conflict("claim_already_used", "this install was already claimed or expired"));
        }
        let config = self
            .store
            .find_provider_config(&pending.provider_config_id)
            .await
            .map_err(ServiceError::from_store("provider configuration"))?;
        let (provider, _) = self.resolve_config(&config).await?;
        let to_string = |bytes: &[u8]| {
            String::from_utf8(bytes.to_vec()).map_err(|_| ServiceError::Internal("token not UTF-8".into()))
        };
        let tokens = tokenvault_providers::TokenSet {
            access_token: to_string(&access)?.into(),
            refresh_token: refresh.map(|r| to_string(&r)).transpose()?.map(Into::into),
            token_type: pending.token_type.clone(),
            expires_at_ms: pending.expires_at,
            scope: Some(pending.scopes.clone()),
            api_base_url: pending.api_base_url.clone(),
            expiry_note: None,
        };
        let identity = tokenvault_providers::Identity {
            account_id: pending.account_id.clone(),
            user_id: pending.account_user_id.clone(),
            display_name: pending.account_name.clone(),
            email: pending.account_email.clone(),
        };
        let grant_id = self
            .store_grant(app_id, &end_user_id, NewConnection { config: &config, provider: &provider, identity, tokens })
            .await?;
        Ok(ClaimedInstall { grant_id })
    }

    /// Erases the sealed tokens of installs whose claim window has closed; returns how many.
    pub async fn erase_expired_installs(&self) -> Result<u64, ServiceError> {
        Ok(self.store.erase_expired_pending_installs(self.now().as_millis()).await?)
    }

    /// Background worker: sweeps unclaimed installs every `interval` until `shutdown`.
    pub async fn run_install_sweeper(
        self: std::sync::Arc<Self>,
        interval: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let what = "tokens of unclaimed installs erased";
        crate::periodic::run_sweep(interval, shutdown, what, || self.erase_expired_installs()).await
    }
}
