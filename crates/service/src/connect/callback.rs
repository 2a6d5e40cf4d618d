//! The provider's redirect back to the vault: validate, exchange, identify, store the grant.

use std::collections::HashMap;

use secrecy::SecretString;
use tokenvault_crypto::SealContext;
use tokenvault_providers::ProviderError;
use tokenvault_store::{ConnectSessionRecord, OAuthFlowRecord, SessionOutcome};
use url::Url;

use crate::connect::sessions::{BROWSER_PURPOSE, BrowserError, STATE_PURPOSE, flow_cookie_name};
use crate::values::secrets::{constant_time_eq, hash_secret};
use crate::values::urls::with_params;
use crate::{ServiceError, Vault};

const MAX_PARAM_LEN: usize = 2048;
const KNOWN_PARAMS: &[&str] = &["code", "state", "error", "error_description", "error_uri", "iss"];

/// The parsed callback query. Each OAuth parameter may appear at most once (RFC 6749 §3.1).
/// `Debug` shows parameter names only: `code` and `state` are credentials.
#[derive(Default)]
struct CallbackParams {
    values: HashMap<String, String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl CallbackParams {
    fn parse(query: &str) -> Result<Self, BrowserError> {
        let invalid = |why: &str| {
            BrowserError::new(400, "invalid_callback", format!("the provider's response is not valid: {why}"))
        };
        if query.len() > 8 * MAX_PARAM_LEN {
            return Err(invalid("too long"));
        }
        let mut values = HashMap::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if !KNOWN_PARAMS.contains(&key.as_ref()) {
                continue; // e.g. the app's own redirect_query parameters, or Dialpad's pass-throughs
            }
            if value.len() > MAX_PARAM_LEN {
                return Err(invalid(&format!("`{key}` is too long")));
            }
            if values.insert(key.clone().into_owned(), value.into_owned()).is_some() {
                return Err(invalid(&format!("`{key}` appears more than once")));
            }
        }
        Ok(Self { values })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Where the browser goes after a callback.
#[derive(Debug)]
pub struct CallbackRedirect {
    pub url: String,
}

impl Vault {
    /// Handles `GET /connect/callback/{config_id}?...`. State problems (missing, unknown,
    /// replayed, expired, for another provider, from another browser) end on an error page;
    /// once the flow is known, the outcome goes back to the app's `return_url`.
    pub async fn handle_callback(
        &self,
        config_id: &str,
        query: &str,
        cookies: &HashMap<String, String>,
    ) -> Result<CallbackRedirect, BrowserError> {
        let params = CallbackParams::parse(query)?;
        let state = params.get("state").ok_or_else(|| {
            BrowserError::new(400, "missing_state", "the provider's response has no state; start the connection again")
        })?;
        let flow = match self.store.find_oauth_flow_by_state(&hash_secret(STATE_PURPOSE, state)).await {
            Ok(flow) => flow,
            Err(tokenvault_store::StoreError::NotFound) => {
                return Err(BrowserError::new(
                    400,
                    "unknown_state",
                    "this response does not belong to any connection the vault started",
                ));
            }
            Err(other) => return Err(ServiceError::from(other).into()),
        };
        let session = match &flow.session_id {
            Some(id) => Some(self.store.find_connect_session(id).await.map_err(ServiceError::from)?),
            None => None,
        };
        // Mix-up defence (RFC 9700 §4.4.2): the state must come back on its own provider's path.
        if flow.provider_config_id != config_id {
            self.burn_flow(
                &flow,
                session.as_ref(),
                "provider_mismatch",
                "the response came back for a different provider than the one the connection started with",
            )
            .await?;
            return Err(BrowserError::new(
                400,
                "state_provider_mismatch",
                "this response came back on another provider's callback; the connection was stopped",
            ));
        }
        if flow.used_at.is_some() {
            return Err(BrowserError::new(
                400,
                "state_already_used",
                "this response was already processed; start the connection again",
            ));
        }
        let now = self.now();
        if now.as_millis() >= flow.expires_at {
            self.burn_flow(&flow, session.as_ref(), "session_expired", "the connection took too long").await?;
            return Err(BrowserError::new(
                400,
                "state_expired",
                "this connection took too long and has expired; start it again",
            ));
        }
        let browser_ok = cookies
            .get(&flow_cookie_name(&flow.id))
            .is_some_and(|value| constant_time_eq(&hash_secret(BROWSER_PURPOSE, value), &flow.browser_hash));
        if !browser_ok {
            return Err(BrowserError::new(
                400,
                "browser_mismatch",
                "this response arrived in a different browser than the one that started the connection",
            ));
        }
        if !self.store.consume_oauth_flow(&flow.id, now.as_millis()).await.map_err(ServiceError::from)? {
            return Err(BrowserError::new(
                400,
                "state_already_used",
                "this response was already processed; start the connection again",
            ));
        }
        let outcome = self.complete_flow(&flow, session.as_ref(), &params).await;
        self.finish(&flow, session.as_ref(), outcome).await
    }

    /// Exchange, identify and store; returns the grant id or a failure (code, message).
    async fn complete_flow(
        &self,
        flow: &OAuthFlowRecord,
        session: Option<&ConnectSessionRecord>,
        params: &CallbackParams,
    ) -> Result<FlowSuccess, FlowFailure> {
        let config = self.store.find_provider_config(&flow.provider_config_id).await.map_err(|_| {
            FlowFailure::new("provider_config_removed", "the provider configuration was removed during the connection")
        })?;
        let (provider, credentials) = self.resolve_config(&config).await.map_err(FlowFailure::internal)?;
        // RFC 9207: a provider that sends `iss` must send the right one.
        if let Some(expected) = &flow.expected_issuer
            && params.get("iss") != Some(expected.as_str())
        {
            return Err(FlowFailure::new(
                "issuer_mismatch",
                "the response's issuer is missing or is not the expected provider",
            ));
        }
        match (params.get("code"), params.get("error")) {
            (Some(_), Some(_)) => {
                return Err(FlowFailure::new(
                    "invalid_callback",
                    "the provider's response carried both a code and an error",
                ));
            }
            (None, Some("access_denied")) => return Err(FlowFailure::denied()),
            (None, Some(error)) => {
                let error: String = error.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
                return Err(FlowFailure::new("provider_error", format!("the provider returned the error `{error}`")));
            }
            (None, None) => {
                return Err(FlowFailure::new(
                    "invalid_callback",
                    "the provider's response carried neither a code nor an error",
                ));
            }
            (Some(_), None) => {}
        }
        let code = params.get("code").unwrap_or_default();
        let verifier = match &flow.pkce_verifier {
            Some(sealed) => {
                let plain = self
                    .keys
                    .open(&SealContext::new("oauth_flows", &flow.id, "pkce_verifier"), sealed)
                    .await
                    .map_err(FlowFailure::internal)?;
                Some(SecretString::from(
                    String::from_utf8(plain.to_vec())
                        .map_err(|_| FlowFailure::internal(ServiceError::Internal("verifier not UTF-8".into())))?,
                ))
            }
            None => None,
        };
        let now = self.now();
        let tokens = self
            .provider_http
            .exchange_code(&provider, &credentials, code, &flow.redirect_uri, verifier.as_ref(), now.as_millis())
            .await
            .map_err(FlowFailure::exchange)?;
        let identity = self
            .provider_http
            .fetch_identity(&provider, &tokens.access_token, tokens.api_base_url.as_deref())
            .await
            .map_err(|e| {
                let code = match e {
                    ProviderError::DestinationNotAllowed(_) => "destination_not_allowed",
                    _ => "identity_failed",
                };
                FlowFailure::new(code, "the vault could not read the connected account").because(&e)
            })?;
        let connection =
            crate::lifecycle::grants::NewConnection { config: &config, provider: &provider, identity, tokens };
        match session {
            Some(session) => {
                let grant_id = self
                    .store_grant(&flow.app_id, &session.end_user_id, connection)
                    .await
                    .map_err(FlowFailure::internal)?;
                if let Some(agent_id) = &session.delegate_agent_id {
                    self.delegate_new_grant(&flow.app_id, agent_id, &grant_id).await.map_err(FlowFailure::internal)?;
                }
                Ok(FlowSuccess::Grant(grant_id))
            }
            None => {
                let claim = self.hold_install(&flow.app_id, connection).await.map_err(FlowFailure::internal)?;
                Ok(FlowSuccess::PendingInstall(claim))
            }
        }
    }

    /// Records the outcome on the session and builds the redirect back to the app.
    async fn finish(
        &self,
        flow: &OAuthFlowRecord,
        session: Option<&ConnectSessionRecord>,
        outcome: Result<FlowSuccess, FlowFailure>,
    ) -> Result<CallbackRedirect, BrowserError> {
        let now = self.now().as_millis();
        let Some(session) = session else {
            return match outcome {
                Ok(FlowSuccess::PendingInstall(claim)) => Ok(CallbackRedirect { url: claim }),
                Ok(FlowSuccess::Grant(_)) => {
                    Err(BrowserError::new(500, "internal_error", "unexpected grant for an install"))
                }
                Err(failure) => Err(BrowserError::new(400, failure.code, failure.message)),
            };
        };
        let return_url =
            Url::parse(&session.return_url).map_err(|e| BrowserError::from(ServiceError::Internal(e.to_string())))?;
        let failure_message = outcome.as_ref().err().map(FlowFailure::full_message).unwrap_or_default();
        let (outcome_row, params): (SessionOutcome<'_>, Vec<(&str, &str)>) = match &outcome {
            Ok(FlowSuccess::Grant(grant_id)) => (
                SessionOutcome {
                    status: "succeeded",
                    error_code: None,
                    error_message: None,
                    grant_id: Some(grant_id),
                    completed_at: Some(now),
                },
                vec![("status", "succeeded"), ("session_id", &session.id), ("grant_id", grant_id)],
            ),
            Ok(FlowSuccess::PendingInstall(_)) => {
                return Err(BrowserError::new(500, "internal_error", "unexpected install for a session"));
            }
            Err(failure) => {
                let status = if failure.code == "access_denied" { "denied" } else { "failed" };
                (
                    SessionOutcome {
                        status,
                        error_code: Some(failure.code),
                        error_message: Some(failure_message.as_str()),
                        grant_id: None,
                        completed_at: Some(now),
                    },
                    vec![("status", status), ("session_id", &session.id), ("error", failure.code)],
                )
            }
        };
        self.store
            .transition_connect_session(&session.id, "started", &outcome_row)
            .await
            .map_err(ServiceError::from)?;
        match &outcome {
            Ok(_) => {
                tracing::info!(app_id = %flow.app_id, session_id = %session.id, "connection succeeded")
            }
            Err(failure) => {
                let detail = failure.detail.as_deref().unwrap_or_default();
                tracing::warn!(app_id = %flow.app_id, session_id = %session.id, config_id = %flow.provider_config_id, code = failure.code, detail, "connection failed")
            }
        }
        Ok(CallbackRedirect { url: with_params(return_url, &params).to_string() })
    }

    /// Consumes a flow that must not be used (mix-up, expiry) and fails its session.
    async fn burn_flow(
        &self,
        flow: &OAuthFlowRecord,
        session: Option<&ConnectSessionRecord>,
        code: &'static str,
        message: &str,
    ) -> Result<(), BrowserError> {
        let now = self.now().as_millis();
        self.store.consume_oauth_flow(&flow.id, now).await.map_err(ServiceError::from)?;
        if let Some(session) = session {
            let status = if code == "session_expired" { "expired" } else { "failed" };
            let outcome = SessionOutcome {
                status,
                error_code: Some(code),
                error_message: Some(message),
                grant_id: None,
                completed_at: Some(now),
            };
            self.store
                .transition_connect_session(&session.id, "started", &outcome)
                .await
                .map_err(ServiceError::from)?;
        }
        Ok(())
    }
}

enum FlowSuccess {
    Grant(String),
    /// Where to send the browser so the app can claim the install.
    PendingInstall(String),
}

struct FlowFailure {
    code: &'static str,
    message: String,
    /// The provider's answer behind it, in words (endpoint, status, error code and description,
    /// TLS failure), for the session's `error_message` and the log; never a secret.
    detail: Option<String>,
}

impl FlowFailure {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), detail: None }
    }

    fn because(mut self, error: &ProviderError) -> Self {
        self.detail = Some(error.to_string());
        self
    }

    /// What the session records: the message, and the provider's answer when there is one.
    fn full_message(&self) -> String {
        match &self.detail {
            Some(detail) if !self.message.contains(detail.as_str()) => format!("{} ({detail})", self.message),
            _ => self.message.clone(),
        }
    }

    fn denied() -> Self {
        Self::new("access_denied", "the user declined the authorization at the provider")
    }

    fn internal(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid { code, message } | ServiceError::Conflict { code, message } => {
                Self::new(code, message)
            }
            other => {
                tracing::error!(error = %other, "connection failed inside the vault");
                Self::new("internal_error", "the vault failed to complete the connection")
            }
        }
    }

    /// Code-exchange failures, in words a user (and the app) can act on.
    fn exchange(err: ProviderError) -> Self {
        let failure = match &err {
            ProviderError::InvalidGrant { .. } => Self::new(
                "code_rejected",
                "the provider rejected the authorization code (it expired or was already used); start the connection again",
            ),
            ProviderError::InvalidClient { .. } => {
                Self::new("invalid_client_credentials", "the provider rejected the app's client id or secret")
            }
            ProviderError::Rejected { description, .. } => Self::new(
                "provider_configuration_error",
                format!("the provider refused the code exchange: {description}"),
            ),
            ProviderError::DestinationNotAllowed(_) => Self::new("destination_not_allowed", err.to_string()),
            ProviderError::Tls { .. } => Self::new("provider_tls_error", err.to_string()),
            ProviderError::Transient { .. } | ProviderError::ResponseLost { .. } => Self::new(
                "provider_unavailable",
                "the provider did not answer the code exchange; start the connection again",
            ),
            other => Self::new("exchange_failed", other.to_string()),
        };
        failure.because(&err)
    }
}
