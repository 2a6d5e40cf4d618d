//! Handing a grant's access token to the app (`POST /v1/grants/{id}/token`): policies first, a
//! refresh first if the token expires within the margin (shared with every concurrent caller),
//! and the retrieval on record in the audit log before the token leaves the vault.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokenvault_store::GrantRecord;

use crate::lifecycle::grants::seal_context;
use crate::lifecycle::refresh::{DESTINATION_NOT_ALLOWED, RefreshOutcome, RefreshTrigger};
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
        // An agent sees only what is delegated to it: anything else does not exist for it.
        let delegation = self.delegation_for(context, &grant_id).await?;
        let grant = self.cached_grant(app_id, &grant_id).await.map_err(ServiceError::from_store("grant"))?;
        let mut scope = crate::access::request::PolicyScope::of_grant(&grant);
        scope.delegation_id = delegation.as_ref().map(|d| d.id.clone());
        let checked = match delegation.as_ref().map(crate::access::delegations::check_token_retrieval) {
            Some(Err(refused)) => Err(refused),
            _ => self.check_policies(&scope, crate::access::request::Access::Token, context).await,
        };
        let checked = checked.map(|decision| with_delegation(decision, delegation.as_ref()));
        let (outcome, decision) = match checked {
            Ok(decision) => (self.fresh_grant(grant.clone()).await, Some(decision)),
            Err(denied) => (Err(denied), None),
        };
        let token = match outcome {
            Ok(fresh) => self.access_token_of(&fresh).await,
            Err(error) => Err(error),
        };
        let entry =
            crate::audit::AuditEntry::for_grant(&grant, "token.retrieved", token.as_ref().err(), decision, context);
        let outcome = token.as_ref().err().map_or("ok", crate::audit::error_code);
        self.metrics.token_fetch(&grant.provider, outcome);
        match token {
            // The token leaves the vault only once its retrieval is on record.
            Ok(token) => self.audit_sink().record_durably(entry).await.map(|()| token),
            Err(error) => {
                self.audit(entry);
                Err(error)
            }
        }
    }

    /// The grant with a usable access token, refreshed first if needed.
    /// `grant` is the record the caller just read (for its policy check): it is read again only
    /// after a refresh, so a token served without refresh costs one grant read.
    pub(crate) async fn fresh_grant(&self, mut grant: GrantRecord) -> Result<GrantRecord, ServiceError> {
        ensure_usable(&grant)?;
        if self.needs_refresh(&grant) {
            let outcome = self
                .refresh_grant(&grant.id, RefreshTrigger::Caller { seen_generation: grant.token_generation })
                .await?;
            // The refresh left its result in the cache: everyone who waited for it takes it from there.
            grant = self.cached_grant(&grant.app_id, &grant.id).await.map_err(ServiceError::from_store("grant"))?;
            ensure_usable(&grant)?;
            if let RefreshOutcome::RetryLater { retry_at } = outcome
                && self.is_expired(&grant)
            {
                if grant.last_error.as_deref() == Some(DESTINATION_NOT_ALLOWED) {
                    return Err(crate::outbound::egress::refused_call(
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
        grant.expires_at.is_some_and(|at| {
            let issued = grant.refreshed_at.unwrap_or(grant.connected_at);
            at <= self.now().as_millis()
                + crate::lifecycle::schedule::effective_margin(self.config.refresh_margin, issued, at)
        })
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

/// The audit wording of an allowed access, naming the delegation it went through, if any.
pub(crate) fn with_delegation(decision: String, delegation: Option<&tokenvault_store::DelegationRecord>) -> String {
    match delegation {
        Some(d) => format!("{decision}; delegated by {}", d.id),
        None => decision,
    }
}
