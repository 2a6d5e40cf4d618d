//! What an audit row holds, built from the call's context and its outcome, before the writer
//! stamps it with an id and a time. Never a secret, token, body or query value.

use tokenvault_store::{AuditRecord, GrantRecord};
use url::Url;

use crate::access::request::{Access, PolicyScope};
use crate::{CallContext, ServiceError};

/// An entry before it is stamped with an id and a time.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditEntry {
    pub record: AuditRecord,
}

fn with_context(mut record: AuditRecord, context: &CallContext) -> AuditRecord {
    record.actor_type = context.actor.kind.clone();
    record.actor_id = context.actor.id.clone();
    record.actor_reason = context.actor.reason.clone();
    record.request_id = (!context.request_id.is_empty()).then(|| context.request_id.clone());
    if let Some(key) = &context.key {
        record.api_key_id = Some(key.key_id.clone());
        record.agent_id = key.agent_id.clone();
    }
    record
}

pub(crate) fn outcome_of(error: Option<&ServiceError>) -> (String, Option<String>) {
    match error {
        None => ("success".into(), None),
        Some(ServiceError::Forbidden { code, message }) if *code == "policy_denied" => {
            ("denied".into(), Some(message.clone()))
        }
        Some(ServiceError::RateLimited { message, .. }) => ("denied".into(), Some(message.clone())),
        Some(other) => ("failure".into(), Some(error_code(other).into())),
    }
}

pub(crate) fn error_code(error: &ServiceError) -> &'static str {
    match error {
        ServiceError::Invalid { code, .. }
        | ServiceError::Unauthenticated { code, .. }
        | ServiceError::Forbidden { code, .. }
        | ServiceError::Conflict { code, .. }
        | ServiceError::Gone { code, .. }
        | ServiceError::Unavailable { code, .. }
        | ServiceError::Gateway { code, .. } => code,
        ServiceError::NotFound { .. } => "not_found",
        ServiceError::RateLimited { .. } => "rate_limited",
        ServiceError::Internal(_) => "internal_error",
    }
}

/// A path with its query reduced to parameter names.
pub(crate) fn path_without_values(url: &Url) -> String {
    let keys: Vec<String> = url.query_pairs().map(|(k, _)| format!("{k}=")).collect();
    if keys.is_empty() { url.path().to_owned() } else { format!("{}?{}", url.path(), keys.join("&")) }
}

impl AuditEntry {
    /// A token retrieval (or another access to a grant). On success `detail` carries the policy
    /// decision that allowed it (see [`Vault::check_policies`]).
    pub(crate) fn for_grant(
        grant: &GrantRecord,
        action: &str,
        error: Option<&ServiceError>,
        decision: Option<String>,
        context: &CallContext,
    ) -> Self {
        let (outcome, error_detail) = outcome_of(error);
        let detail = if error.is_none() { decision } else { error_detail };
        let record = AuditRecord {
            app_id: grant.app_id.clone(),
            action: action.into(),
            outcome,
            detail,
            grant_id: Some(grant.id.clone()),
            end_user_id: Some(grant.end_user_id.clone()),
            provider: Some(grant.provider.clone()),
            ..AuditRecord::default()
        };
        Self { record: with_context(record, context) }
    }

    /// The start of a proxied call's row; [`crate::usage::proxy::audit::ProxyAudit`] fills in the rest as
    /// the call proceeds and writes it once, when the call ends.
    pub(crate) fn proxy(app_id: &str, method: &http::Method, context: &CallContext) -> Self {
        let record = AuditRecord {
            app_id: app_id.to_owned(),
            action: "proxy.request".into(),
            outcome: "success".into(),
            method: Some(method.as_str().to_owned()),
            ..AuditRecord::default()
        };
        Self { record: with_context(record, context) }
    }

    pub(crate) fn denied(
        scope: &PolicyScope,
        access: &Access<'_>,
        error: &ServiceError,
        context: &CallContext,
    ) -> Self {
        let (method, path) = match access {
            Access::Token => (None, None),
            Access::Proxy { method, path } => {
                (Some((*method).to_owned()), Some(path.split('?').next().unwrap_or_default().to_owned()))
            }
        };
        let record = AuditRecord {
            app_id: scope.app_id.clone(),
            action: "policy.decision".into(),
            outcome: "denied".into(),
            detail: Some(error.to_string()),
            grant_id: Some(scope.grant_id.clone()),
            end_user_id: scope.end_user_id.clone(),
            provider: Some(scope.provider.clone()),
            method,
            path,
            ..AuditRecord::default()
        };
        Self { record: with_context(record, context) }
    }

    /// A configuration change; `detail` names the object changed.
    pub(crate) fn config(app_id: &str, action: &str, object_id: &str, context: &CallContext) -> Self {
        let record = AuditRecord {
            app_id: app_id.to_owned(),
            action: action.into(),
            outcome: "success".into(),
            detail: Some(object_id.to_owned()),
            ..AuditRecord::default()
        };
        Self { record: with_context(record, context) }
    }

    /// Names the grant the entry is about.
    pub(crate) fn with_grant_id(mut self, grant_id: &str) -> Self {
        self.record.grant_id = Some(grant_id.to_owned());
        self
    }

    /// Attributes the entry to the call that caused it (actor and request id).
    pub(crate) fn by(self, context: &CallContext) -> Self {
        Self { record: with_context(self.record, context) }
    }

    pub(crate) fn grant_event(grant: &GrantRecord, action: &str, reason: Option<&str>) -> Self {
        Self {
            record: AuditRecord {
                app_id: grant.app_id.clone(),
                action: action.into(),
                outcome: "success".into(),
                grant_id: Some(grant.id.clone()),
                end_user_id: Some(grant.end_user_id.clone()),
                provider: Some(grant.provider.clone()),
                detail: reason.map(str::to_owned),
                ..AuditRecord::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_dropped() {
        let url = Url::parse("https://api.zoom.us/v2/users?page_size=30&next_page_token=secretish").unwrap();
        assert_eq!(path_without_values(&url), "/v2/users?page_size=&next_page_token=");
    }
}
