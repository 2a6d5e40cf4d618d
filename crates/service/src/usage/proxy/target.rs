//! What a proxied call goes to: an OAuth grant or a managed secret, both addressed by a grant id.

use secrecy::{ExposeSecret, SecretString};
use tokenvault_store::GrantRecord;

use crate::cache::hot_cache::Subject;
use url::Url;

use crate::access::request::PolicyScope;
use crate::{ServiceError, Vault};

/// How the credential is attached to the upstream request.
pub(crate) enum Credential {
    Bearer(SecretString),
    Header { name: http::HeaderName, value: SecretString },
    Basic { username: String, password: SecretString },
    Query { parameter: String, value: SecretString },
}

impl Credential {
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credential::Bearer(token) => request.bearer_auth(token.expose_secret()),
            Credential::Header { name, value } => request.header(name.clone(), value.expose_secret()),
            Credential::Basic { username, password } => request.basic_auth(username, Some(password.expose_secret())),
            Credential::Query { parameter, value } => request.query(&[(parameter.as_str(), value.expose_secret())]),
        }
    }
}

pub(crate) struct ProxyTarget {
    pub grant_id: String,
    pub provider: String,
    pub end_user_id: Option<String>,
    /// The OAuth grant, if the target is one (a managed secret is not refreshed).
    pub grant: Option<GrantRecord>,
    pub refreshable_grant: Option<()>,
    pub base: Url,
    pub credential: Credential,
    pub scope: PolicyScope,
}

impl Vault {
    /// Checks that a grant id (OAuth grant or managed secret) belongs to `app_id`.
    pub(crate) async fn resolve_grant_owner(&self, app_id: &str, grant_id: &str) -> Result<(), ServiceError> {
        self.cached_subject(app_id, grant_id).await.map(|_| ()).map_err(ServiceError::from_store("grant"))
    }

    /// What `grant_id` names for `app_id`, looked up without touching the provider: the policy
    /// check comes before any refresh.
    /// `requested_base` is the call's `x-tokenvault-base-url`: it must name one of a managed
    /// secret's declared base URLs (or an OAuth grant's own base).
    pub(crate) async fn proxy_subject(
        &self,
        app_id: &str,
        grant_id: &str,
        requested_base: Option<&str>,
    ) -> Result<ProxySubject, ServiceError> {
        match self.cached_subject(app_id, grant_id).await.map_err(ServiceError::from_store("grant"))? {
            Subject::Grant(grant) => Ok(ProxySubject::Grant(Box::new(GrantRecord::clone(&grant)))),
            Subject::Managed(record) => {
                Ok(ProxySubject::ManagedSecret(Box::new(self.managed_secret_target(&record, requested_base).await?)))
            }
        }
    }

    /// The target with a usable credential: an OAuth grant is refreshed first if it expires soon.
    pub(crate) async fn proxy_target(
        &self,
        subject: ProxySubject,
        requested_base: Option<&str>,
    ) -> Result<ProxyTarget, ServiceError> {
        let grant = match subject {
            ProxySubject::ManagedSecret(target) => return Ok(*target),
            ProxySubject::Grant(grant) => self.fresh_grant(*grant).await?,
        };
        let declared: Vec<String> = grant.api_base_url.iter().cloned().collect();
        if declared.is_empty() {
            return Err(ServiceError::invalid(
                "no_api_base_url",
                "this grant's provider has no API base URL to proxy to",
            ));
        }
        let base = crate::usage::base_urls::choose_base_url(&declared, requested_base)?;
        let token = self
            .open_grant_secret(&grant, "access_token", grant.access_token.as_ref())
            .await?
            .ok_or_else(|| ServiceError::Internal("active grant without access token".into()))?;
        Ok(ProxyTarget {
            grant_id: grant.id.clone(),
            provider: grant.provider.clone(),
            end_user_id: Some(grant.end_user_id.clone()),
            refreshable_grant: Some(()).filter(|_| grant.refresh_token.is_some()),
            scope: PolicyScope::of_grant(&grant),
            grant: Some(grant),
            base,
            credential: Credential::Bearer(token),
        })
    }
}

/// A proxied call's grant before its credential is made usable.
pub(crate) enum ProxySubject {
    Grant(Box<GrantRecord>),
    /// A managed secret needs no refresh: it is ready as it is.
    ManagedSecret(Box<ProxyTarget>),
}

impl ProxySubject {
    pub(crate) fn scope(&self) -> PolicyScope {
        match self {
            ProxySubject::Grant(grant) => PolicyScope::of_grant(grant),
            ProxySubject::ManagedSecret(target) => target.scope.clone(),
        }
    }

    /// (grant id, provider, end user) for the audit row.
    pub(crate) fn identity(&self) -> (&str, &str, Option<&str>) {
        match self {
            ProxySubject::Grant(grant) => (&grant.id, &grant.provider, Some(&grant.end_user_id)),
            ProxySubject::ManagedSecret(target) => (&target.grant_id, &target.provider, target.end_user_id.as_deref()),
        }
    }
}
