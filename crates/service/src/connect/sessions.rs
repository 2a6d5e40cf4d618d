//! Connect sessions: an app's backend lets one end user connect one of the allowed providers.
//! The session's token is single-use; opening its `connect_url` starts exactly one OAuth flow.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokenvault_crypto::SealContext;
use tokenvault_providers::Pkce;
use tokenvault_store::{ConnectSessionRecord, OAuthFlowRecord, ProviderConfigRecord, SessionOutcome};

use crate::values::secrets::{hash_secret, random_secret};
use crate::values::urls::parse_browser_url;
use crate::{IdKind, ServiceError, Timestamp, Vault};

pub(crate) const TOKEN_PURPOSE: &str = "tokenvault/connect-session";
pub(crate) const STATE_PURPOSE: &str = "tokenvault/oauth-state";
pub(crate) const BROWSER_PURPOSE: &str = "tokenvault/flow-browser";
/// How long a user may stay at the provider between leaving the vault and coming back.
pub(crate) const FLOW_LIFETIME: Duration = Duration::from_secs(15 * 60);
const MAX_TTL: Duration = Duration::from_secs(3600);
const MIN_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectSessionInput {
    /// The app's own identifier of the end user (opaque to the vault).
    pub end_user_id: String,
    /// Provider configuration keys (or ids) the user may connect; default: all of the app's.
    #[serde(default)]
    pub providers: Option<Vec<String>>,
    /// Where the browser returns afterwards; its origin must be one the app registered.
    pub return_url: String,
    #[serde(default, deserialize_with = "crate::values::whole_numbers::opt_u64")]
    pub ttl_seconds: Option<u64>,
    /// An agent of the app the new grant is delegated to (proxy-only). A session an agent key
    /// creates always delegates to that agent.
    #[serde(default)]
    pub delegate_to_agent_id: Option<String>,
}

/// A session as the app sees it when polling.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectSessionView {
    pub id: String,
    pub end_user_id: String,
    pub providers: Vec<String>,
    pub return_url: String,
    /// `pending`, `started`, `succeeded`, `denied`, `failed` or `expired`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<SessionErrorView>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionErrorView {
    pub code: String,
    pub message: String,
}

/// A freshly created session: the token exists only in this value and in `connect_url`.
#[derive(Debug)]
pub struct CreatedConnectSession {
    pub session: ConnectSessionView,
    pub token: SecretString,
    pub connect_url: SecretString,
}

/// What opening a connect URL leads to.
#[derive(Debug)]
pub enum ConnectStart {
    /// Send the browser here, setting the cookie that binds the flow to this browser.
    Redirect { url: String, cookie: FlowCookie },
    /// The hosted Connect page: who asks, for which providers, with what access.
    Landing(Box<ConnectLanding>),
}

/// What the hosted Connect page shows before the user leaves for a provider.
#[derive(Debug, Clone)]
pub struct ConnectLanding {
    pub app: crate::App,
    pub providers: Vec<LandingProvider>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct LandingProvider {
    /// The provider configuration's key (`?provider=` starts it).
    pub key: String,
    /// The catalog id (`zoom`, `dialpad`, …): picks the logo.
    pub provider: String,
    pub display_name: String,
    /// The access requested: scope names with the catalog's descriptions.
    pub scopes: Vec<(String, String)>,
    /// Said instead of (or beside) the scopes, e.g. that Zoom's come from the app's settings.
    pub scope_note: Option<String>,
    /// The account this end user already connected with this configuration, if any.
    pub connected_account: Option<String>,
}

/// The cookie that ties a flow's callback to the browser that started it (RFC 6749 §10.12).
#[derive(Debug)]
pub struct FlowCookie {
    pub name: String,
    pub value: SecretString,
    pub max_age_seconds: u64,
    pub secure: bool,
}

/// A browser-facing failure: shown as a page with a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl BrowserError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

impl From<ServiceError> for BrowserError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error in a browser flow");
                BrowserError::new(500, "internal_error", "the vault failed to handle this request")
            }
            ServiceError::Unavailable { code, message, .. } => BrowserError::new(503, code, message),
            other => BrowserError::new(400, "invalid_request", other.to_string()),
        }
    }
}

pub(crate) fn session_view(record: ConnectSessionRecord, now: Timestamp) -> ConnectSessionView {
    let expired = matches!(record.status.as_str(), "pending" | "started") && now.as_millis() >= record.expires_at;
    ConnectSessionView {
        id: record.id,
        end_user_id: record.end_user_id,
        providers: record.allowed_configs,
        return_url: record.return_url,
        status: if expired { "expired".into() } else { record.status },
        grant_id: record.grant_id,
        error: record
            .error_code
            .map(|code| SessionErrorView { code, message: record.error_message.unwrap_or_default() }),
        expires_at: Timestamp::from_millis(record.expires_at),
        created_at: Timestamp::from_millis(record.created_at),
        completed_at: record.completed_at.map(Timestamp::from_millis),
    }
}

pub(crate) fn validate_end_user_id(end_user_id: &str) -> Result<String, ServiceError> {
    if end_user_id.is_empty() || end_user_id.chars().count() > 256 || end_user_id.chars().any(char::is_control) {
        return Err(ServiceError::invalid("invalid_end_user_id", "`end_user_id` must be 1-256 printable characters"));
    }
    Ok(end_user_id.to_owned())
}

impl Vault {
    pub async fn create_connect_session(
        &self,
        app_id: &str,
        input: ConnectSessionInput,
        context: &crate::CallContext,
    ) -> Result<CreatedConnectSession, ServiceError> {
        let app = self.store.get_app(app_id).await.map_err(ServiceError::from_store("app"))?;
        let delegate_agent_id = match (context.agent_id(), input.delegate_to_agent_id.as_deref()) {
            // An agent connects accounts for itself only; naming another agent finds nothing.
            (Some(own), Some(named)) if named != own => return Err(ServiceError::not_found("agent")),
            (Some(own), _) => Some(own.to_owned()),
            (None, Some(named)) => {
                let agent = self.app_agent(app_id, named).await?;
                if agent.status != "active" {
                    return Err(ServiceError::conflict("agent_not_active", format!("the agent is {}", agent.status)));
                }
                Some(agent.id)
            }
            (None, None) => None,
        };
        let end_user_id = validate_end_user_id(&input.end_user_id)?;
        let return_url = parse_browser_url("return_url", &input.return_url)?;
        let origin = return_url.origin().ascii_serialization();
        if !app.return_origins.contains(&origin) {
            return Err(ServiceError::invalid(
                "return_url_not_allowed",
                format!("the origin {origin} is not one of the app's return origins; add it with PATCH /v1/app"),
            ));
        }
        let configs = self.store.list_provider_configs(app_id).await?;
        if configs.is_empty() {
            return Err(ServiceError::invalid(
                "no_provider_configs",
                "configure a provider first (POST /v1/provider-configs)",
            ));
        }
        let allowed: Vec<String> = match input.providers {
            None => configs.iter().map(|c| c.key.clone()).collect(),
            Some(wanted) if wanted.is_empty() => {
                return Err(ServiceError::invalid("invalid_providers", "`providers` must not be empty"));
            }
            Some(wanted) => {
                let mut keys = Vec::new();
                for name in wanted {
                    let config = configs.iter().find(|c| c.key == name || c.id == name).ok_or_else(|| {
                        let known: Vec<&str> = configs.iter().map(|c| c.key.as_str()).collect();
                        ServiceError::invalid(
                            "unknown_provider_config",
                            format!(
                                "no provider configuration `{}`; configured: {}",
                                name.chars().take(64).collect::<String>(),
                                known.join(", ")
                            ),
                        )
                    })?;
                    if !keys.contains(&config.key) {
                        keys.push(config.key.clone());
                    }
                }
                keys
            }
        };
        let ttl = input.ttl_seconds.map(Duration::from_secs).unwrap_or(self.config.connect_session_ttl);
        if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
            return Err(ServiceError::invalid("invalid_ttl", "`ttl_seconds` must be between 60 and 3600"));
        }
        let token = SecretString::from(format!("tvc_{}", random_secret()));
        let now = self.now();
        let record = ConnectSessionRecord {
            id: IdKind::ConnectSession.generate(),
            app_id: app_id.to_owned(),
            token_hash: hash_secret(TOKEN_PURPOSE, token.expose_secret()),
            end_user_id,
            allowed_configs: allowed,
            return_url: return_url.to_string(),
            status: "pending".into(),
            error_code: None,
            error_message: None,
            grant_id: None,
            expires_at: now.plus(ttl).as_millis(),
            created_at: now.as_millis(),
            completed_at: None,
            delegate_agent_id,
        };
        self.store.insert_connect_session(&record).await?;
        let connect_url = self
            .public_url()
            .join(&format!("connect/{}", token.expose_secret()))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        tracing::info!(app_id, session_id = %record.id, "connect session created");
        Ok(CreatedConnectSession {
            session: session_view(record, now),
            token,
            connect_url: SecretString::from(connect_url.to_string()),
        })
    }

    /// A session of `app_id`; for an agent, only one that delegates to it (else "not found").
    pub async fn get_connect_session(
        &self,
        app_id: &str,
        id: &str,
        context: &crate::CallContext,
    ) -> Result<ConnectSessionView, ServiceError> {
        let id = IdKind::ConnectSession.parse(id)?;
        let record =
            self.store.get_connect_session(app_id, &id).await.map_err(ServiceError::from_store("connect session"))?;
        if let Some(agent) = context.agent_id()
            && record.delegate_agent_id.as_deref() != Some(agent)
        {
            return Err(ServiceError::not_found("connect session"));
        }
        Ok(session_view(record, self.now()))
    }

    /// The browser opened a connect URL: start the provider's authorization flow.
    pub async fn start_connect(&self, token: &str, provider: Option<&str>) -> Result<ConnectStart, BrowserError> {
        let unknown =
            || BrowserError::new(404, "unknown_session", "this connect link is not valid; ask the app for a new one");
        if !token.starts_with("tvc_") || token.len() > 100 {
            return Err(unknown());
        }
        let session = match self.store.find_connect_session_by_token(&hash_secret(TOKEN_PURPOSE, token)).await {
            Ok(s) => s,
            Err(tokenvault_store::StoreError::NotFound) => return Err(unknown()),
            Err(other) => return Err(ServiceError::from(other).into()),
        };
        let now = self.now();
        if now.as_millis() >= session.expires_at {
            return Err(BrowserError::new(
                410,
                "session_expired",
                "this connect link has expired; ask the app for a new one",
            ));
        }
        if session.status != "pending" {
            return Err(BrowserError::new(
                409,
                "session_already_used",
                "this connect link was already used; ask the app for a new one",
            ));
        }
        let configs = self.store.list_provider_configs(&session.app_id).await.map_err(ServiceError::from)?;
        let allowed: Vec<&ProviderConfigRecord> =
            configs.iter().filter(|c| session.allowed_configs.contains(&c.key)).collect();
        let config = match (provider, allowed.as_slice()) {
            (_, []) => {
                return Err(BrowserError::new(
                    400,
                    "provider_not_allowed",
                    "the app has not finished setting up this connection; please contact the app's support",
                ));
            }
            (Some(key), _) => *allowed.iter().find(|c| c.key == key).ok_or_else(|| {
                BrowserError::new(400, "provider_not_allowed", "this connect link does not allow that provider")
            })?,
            (None, offered) => {
                let landing = self.connect_landing(&session, offered).await.map_err(BrowserError::from)?;
                return Ok(ConnectStart::Landing(Box::new(landing)));
            }
        };
        let started = self
            .store
            .transition_connect_session(
                &session.id,
                "pending",
                &SessionOutcome {
                    status: "started",
                    error_code: None,
                    error_message: None,
                    grant_id: None,
                    completed_at: None,
                },
            )
            .await
            .map_err(ServiceError::from)?;
        if !started {
            return Err(BrowserError::new(
                409,
                "session_already_used",
                "this connect link was already used; ask the app for a new one",
            ));
        }
        self.begin_flow(&session.app_id, Some(&session.id), config).await
    }

    async fn connect_landing(
        &self,
        session: &ConnectSessionRecord,
        offered: &[&ProviderConfigRecord],
    ) -> Result<ConnectLanding, ServiceError> {
        let app: crate::App =
            self.store.get_app(&session.app_id).await.map_err(ServiceError::from_store("app"))?.into();
        let filter =
            tokenvault_store::GrantFilter { end_user_id: Some(&session.end_user_id), provider: None, status: None };
        let existing = self.store.list_grants(&session.app_id, &filter, None, 200).await?;
        let providers = offered
            .iter()
            .map(|config| {
                let definition = self.catalog().get(&config.provider);
                let described = |name: &String| {
                    let description = definition
                        .as_ref()
                        .and_then(|d| d.scopes.iter().find(|o| &o.name == name))
                        .map(|o| o.description.clone())
                        .unwrap_or_default();
                    (name.clone(), description)
                };
                let connected_account = existing
                    .iter()
                    .filter(|g| g.provider_config_id == config.id && g.status != "revoked")
                    .max_by_key(|g| g.created_at)
                    .map(|g| {
                        let account = crate::lifecycle::grants::GrantView::from(g.clone()).account;
                        account.email.or(account.name).unwrap_or(account.id)
                    });
                LandingProvider {
                    key: config.key.clone(),
                    provider: config.provider.clone(),
                    display_name: definition
                        .as_ref()
                        .map(|d| d.display_name.clone())
                        .unwrap_or_else(|| config.provider.clone()),
                    scopes: config.scopes.iter().map(described).collect(),
                    scope_note: definition
                        .as_ref()
                        .filter(|d| !d.scope_policy.configurable)
                        .and_then(|d| d.scope_policy.explanation.clone()),
                    connected_account,
                }
            })
            .collect();
        Ok(ConnectLanding { app, providers, expires_at: Timestamp::from_millis(session.expires_at) })
    }

    /// Creates a flow (state, browser binding, PKCE) and returns the provider's authorize URL.
    pub(crate) async fn begin_flow(
        &self,
        app_id: &str,
        session_id: Option<&str>,
        config: &ProviderConfigRecord,
    ) -> Result<ConnectStart, BrowserError> {
        let (provider, credentials) = self.resolve_config(config).await?;
        let flow_id = IdKind::OAuthFlow.generate();
        let state = random_secret();
        let browser_secret = random_secret();
        let pkce = provider.uses_pkce().then(Pkce::generate);
        let sealed_verifier = match &pkce {
            Some(p) => Some(
                self.keys
                    .seal(
                        &SealContext::new("oauth_flows", &flow_id, "pkce_verifier"),
                        p.verifier.expose_secret().as_bytes(),
                    )
                    .await
                    .map_err(BrowserError::from)?,
            ),
            None => None,
        };
        let now = self.now();
        let flow = OAuthFlowRecord {
            id: flow_id.clone(),
            state_hash: hash_secret(STATE_PURPOSE, &state),
            browser_hash: hash_secret(BROWSER_PURPOSE, &browser_secret),
            app_id: app_id.to_owned(),
            session_id: session_id.map(str::to_owned),
            provider_config_id: config.id.clone(),
            redirect_uri: config.redirect_uri.clone(),
            pkce_verifier: sealed_verifier,
            expected_issuer: provider.expected_issuer.clone(),
            expires_at: now.plus(FLOW_LIFETIME).as_millis(),
            created_at: now.as_millis(),
            used_at: None,
        };
        self.store.insert_oauth_flow(&flow).await.map_err(ServiceError::from)?;
        let url =
            provider.authorize_url(&credentials.client_id, &config.redirect_uri, &state, &config.scopes, pkce.as_ref());
        tracing::info!(app_id, flow_id = %flow_id, provider = %config.provider, "authorization flow started");
        Ok(ConnectStart::Redirect {
            url: url.to_string(),
            cookie: FlowCookie {
                name: flow_cookie_name(&flow_id),
                value: SecretString::from(browser_secret),
                max_age_seconds: FLOW_LIFETIME.as_secs(),
                secure: self.public_url().scheme() == "https",
            },
        })
    }
}

pub(crate) fn flow_cookie_name(flow_id: &str) -> String {
    format!("tv_flow_{}", &flow_id[flow_id.len().saturating_sub(12)..])
}
