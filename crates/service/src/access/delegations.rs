//! Delegations: an app lends one of its grants (or managed secrets) to one of its agents,
//! optionally narrowed to some methods and path patterns and to a lifetime. Delegated grants are
//! proxy-only unless the delegation says otherwise: the agent acts with the credential without
//! ever holding it. An agent key reaches only what is delegated to its agent; anything else is
//! "not found" (no existence leak). Revoking a delegation is immediate and leaves the grant intact.

use serde::{Deserialize, Serialize};
use tokenvault_store::DelegationRecord;

use crate::{CallContext, IdKind, ServiceError, Timestamp, Vault};

const MAX_PATTERNS: usize = 32;
const MAX_PATTERN_LEN: usize = 256;
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// `POST /v1/agents/{id}/delegations`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationInput {
    /// An OAuth grant or a managed secret of the app.
    pub grant_id: String,
    /// Upper-case HTTP methods the agent may proxy; absent: any.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Path patterns (`*` within a segment, `**` across) the agent may proxy; absent: any.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// Default `true`: the agent may only proxy; `false` lets it also retrieve the raw token.
    #[serde(default)]
    pub proxy_only: Option<bool>,
    #[serde(default, deserialize_with = "crate::values::whole_numbers::opt_u64")]
    pub expires_in: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DelegationView {
    pub id: String,
    pub app_id: String,
    pub agent_id: String,
    pub grant_id: String,
    pub methods: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    pub proxy_only: bool,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl From<DelegationRecord> for DelegationView {
    fn from(r: DelegationRecord) -> Self {
        DelegationView {
            id: r.id,
            app_id: r.app_id,
            agent_id: r.agent_id,
            grant_id: r.grant_id,
            methods: r.methods,
            paths: r.paths,
            proxy_only: r.proxy_only,
            expires_at: r.expires_at.map(Timestamp::from_millis),
            created_at: Timestamp::from_millis(r.created_at),
            revoked_at: r.revoked_at.map(Timestamp::from_millis),
        }
    }
}

fn validate_narrowing(input: &DelegationInput) -> Result<(), ServiceError> {
    let invalid = |m: String| ServiceError::invalid("invalid_delegation", m);
    if let Some(methods) = &input.methods
        && (methods.is_empty() || methods.iter().any(|m| !METHODS.contains(&m.as_str())))
    {
        return Err(invalid(format!("`methods` are 1 or more of {}", METHODS.join(", "))));
    }
    if let Some(paths) = &input.paths
        && (paths.is_empty()
            || paths.len() > MAX_PATTERNS
            || paths
                .iter()
                .any(|p| !p.starts_with('/') || p.chars().count() > MAX_PATTERN_LEN || p.chars().any(char::is_control)))
    {
        return Err(invalid(format!(
            "`paths` are 1 to {MAX_PATTERNS} patterns starting with `/`, at most {MAX_PATTERN_LEN} characters"
        )));
    }
    if input.expires_in.is_some_and(|s| s == 0 || s > 10 * 365 * 86_400) {
        return Err(invalid("`expires_in` is 1 second to 10 years".into()));
    }
    Ok(())
}

/// Whether a delegation is in force at `now`.
fn in_force(d: &DelegationRecord, now: i64) -> bool {
    d.revoked_at.is_none() && d.expires_at.is_none_or(|at| at > now)
}

impl Vault {
    /// Delegates a grant or managed secret of `app_id` to one of its agents. Another app's agent
    /// or grant is "not found".
    pub async fn create_delegation(
        &self,
        app_id: &str,
        agent_id: &str,
        input: DelegationInput,
        context: &CallContext,
    ) -> Result<DelegationView, ServiceError> {
        let agent = self.app_agent(app_id, agent_id).await?;
        if agent.status == "revoked" {
            return Err(ServiceError::conflict("agent_revoked", "the agent is revoked"));
        }
        validate_narrowing(&input)?;
        let grant_id = IdKind::Grant.parse(&input.grant_id)?;
        self.resolve_grant_owner(app_id, &grant_id).await?;
        let record = self.delegation_record(app_id, &agent.id, &grant_id, &input);
        self.store.insert_delegation(&record).await?;
        tracing::info!(app_id, agent_id = %agent.id, grant_id = %grant_id, delegation_id = %record.id, "grant delegated");
        let entry = crate::audit::AuditEntry::config(app_id, "delegation.created", &record.id, context);
        self.audit(entry.with_grant_id(&grant_id));
        Ok(record.into())
    }

    pub(crate) fn delegation_record(
        &self,
        app_id: &str,
        agent_id: &str,
        grant_id: &str,
        input: &DelegationInput,
    ) -> DelegationRecord {
        let now = self.now().as_millis();
        DelegationRecord {
            id: IdKind::Delegation.generate(),
            app_id: app_id.to_owned(),
            agent_id: agent_id.to_owned(),
            grant_id: grant_id.to_owned(),
            methods: input.methods.clone(),
            paths: input.paths.clone(),
            proxy_only: input.proxy_only.unwrap_or(true),
            expires_at: input.expires_in.map(|s| now + s as i64 * 1000),
            created_at: now,
            revoked_at: None,
        }
    }

    /// The delegation a connect session asked for: the new grant, proxy-only, to its agent (once).
    pub(crate) async fn delegate_new_grant(
        &self,
        app_id: &str,
        agent_id: &str,
        grant_id: &str,
    ) -> Result<(), ServiceError> {
        let now = self.now().as_millis();
        let existing = self.store.agent_delegations(agent_id).await?;
        if existing.iter().any(|d| d.grant_id == grant_id && in_force(d, now)) {
            return Ok(());
        }
        let input = DelegationInput { grant_id: grant_id.to_owned(), ..DelegationInput::default() };
        let record = self.delegation_record(app_id, agent_id, grant_id, &input);
        self.store.insert_delegation(&record).await?;
        tracing::info!(app_id, agent_id, grant_id, delegation_id = %record.id, "new grant delegated by its connect session");
        let entry = crate::audit::AuditEntry::config(app_id, "delegation.created", &record.id, &CallContext::default());
        self.audit(entry.with_grant_id(grant_id));
        Ok(())
    }

    /// Every delegation to one agent of the app, revoked and expired ones included.
    pub async fn list_delegations(&self, app_id: &str, agent_id: &str) -> Result<Vec<DelegationView>, ServiceError> {
        let agent = self.app_agent(app_id, agent_id).await?;
        Ok(self.store.agent_delegations(&agent.id).await?.into_iter().map(DelegationView::from).collect())
    }

    pub async fn get_delegation(&self, app_id: &str, delegation_id: &str) -> Result<DelegationView, ServiceError> {
        let id = IdKind::Delegation.parse(delegation_id)?;
        Ok(self.store.find_delegation(app_id, &id).await.map_err(ServiceError::from_store("delegation"))?.into())
    }

    /// Ends a delegation at once; the grant itself is untouched.
    pub async fn revoke_delegation(
        &self,
        app_id: &str,
        delegation_id: &str,
        context: &CallContext,
    ) -> Result<(), ServiceError> {
        let id = IdKind::Delegation.parse(delegation_id)?;
        self.store
            .revoke_delegation(app_id, &id, self.now().as_millis())
            .await
            .map_err(ServiceError::from_store("delegation"))?;
        tracing::info!(app_id, delegation_id = %id, "delegation revoked");
        self.audit(crate::audit::AuditEntry::config(app_id, "delegation.revoked", &id, context));
        Ok(())
    }

    /// The delegation that lets the calling agent use `grant_id`: `Ok(None)` when the caller is
    /// not an agent (an app key is not restricted by delegations); for an agent without one in
    /// force, "grant not found", as if the grant did not exist.
    pub(crate) async fn delegation_for(
        &self,
        context: &CallContext,
        grant_id: &str,
    ) -> Result<Option<DelegationRecord>, ServiceError> {
        let Some(agent_id) = context.agent_id() else { return Ok(None) };
        let now = self.now().as_millis();
        let delegations = self.cached_delegations(agent_id).await?;
        delegations
            .iter()
            .rev()
            .find(|d| d.grant_id == grant_id && in_force(d, now))
            .cloned()
            .map(Some)
            .ok_or(ServiceError::NotFound { what: "grant" })
    }

    /// The grant ids the calling agent may see (`None`: not an agent, no restriction).
    pub(crate) async fn delegated_grant_ids(
        &self,
        context: &CallContext,
    ) -> Result<Option<std::collections::HashSet<String>>, ServiceError> {
        let Some(agent_id) = context.agent_id() else { return Ok(None) };
        let now = self.now().as_millis();
        let delegations = self.cached_delegations(agent_id).await?;
        Ok(Some(delegations.iter().filter(|d| in_force(d, now)).map(|d| d.grant_id.clone()).collect()))
    }
}

/// 403 unless the delegation allows this proxied call's method and path.
pub(crate) fn check_delegated_call(d: &DelegationRecord, method: &str, path: &str) -> Result<(), ServiceError> {
    let denied = |what: &str| ServiceError::Forbidden {
        code: "delegation_denied",
        message: format!("delegation {} does not allow this {what}", d.id),
    };
    if let Some(methods) = &d.methods
        && !methods.iter().any(|m| m.eq_ignore_ascii_case(method))
    {
        return Err(denied("method"));
    }
    if let Some(paths) = &d.paths
        && !paths.iter().any(|p| crate::access::policies::glob_match(p, path))
    {
        return Err(denied("path"));
    }
    Ok(())
}

/// 403 when the delegation is proxy-only and the caller asked for the raw token.
pub(crate) fn check_token_retrieval(d: &DelegationRecord) -> Result<(), ServiceError> {
    if d.proxy_only {
        return Err(ServiceError::Forbidden {
            code: "delegation_proxy_only",
            message: format!("delegation {} lets this agent use the grant only through the proxy", d.id),
        });
    }
    Ok(())
}
