//! Holding a proxied call: what the provider would receive (the headers that would be sent, the
//! body up to the proxy's replay limit) is sealed and stored, the approvers are told by an app
//! webhook, and the caller gets the approval to poll instead of the provider's answer.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokenvault_crypto::SealContext;
use tokenvault_store::ApprovalRecord;

use crate::access::policies::Hold;
use crate::usage::approvals::{ApprovalView, HeldSubject};
use crate::usage::proxy::ProxyRequest;
use crate::usage::proxy::body::{OutgoingBody, metered_request};
use crate::usage::proxy::meter::BodyMeter;
use crate::{CallContext, IdKind, ServiceError, Vault};

/// Largest body a held call keeps: the proxy's replay limit.
pub(crate) const HELD_BODY_LIMIT: u64 = 64 * 1024;

/// The sealed part of a held call.
#[derive(Serialize, Deserialize)]
pub(crate) struct HeldRequest {
    /// Header name and base64 value, in order: what the provider would receive.
    pub headers: Vec<(String, String)>,
    /// Base64.
    pub body: String,
    /// The query as sent (the approval's own `query` shows parameter names only).
    #[serde(default)]
    pub query: Option<String>,
    /// The `x-tokenvault-base-url` the call asked for, if any.
    pub base_url: Option<String>,
}

pub(crate) fn seal_context<'a>(id: &'a str, column: &'static str) -> SealContext<'a> {
    SealContext::new("approvals", id, column)
}

fn body_too_large() -> ServiceError {
    ServiceError::Gateway {
        status: 413,
        code: "approval_body_too_large",
        message: format!("a call that needs approval may carry at most {HELD_BODY_LIMIT} bytes of body"),
    }
}

/// `a=1&b=2` as `a=&b=`: values may be secret, and are sealed with the request.
fn query_names(query: Option<&str>) -> Option<String> {
    let names: Vec<String> = url::form_urlencoded::parse(query?.as_bytes()).map(|(k, _)| format!("{k}=")).collect();
    (!names.is_empty()).then(|| names.join("&"))
}

impl Vault {
    pub(crate) async fn hold_for_approval(
        &self,
        app_id: &str,
        subject: HeldSubject<'_>,
        hold: Hold,
        request: ProxyRequest,
        meter: &Arc<BodyMeter>,
        context: &CallContext,
    ) -> Result<ApprovalView, ServiceError> {
        // A path the proxy would refuse is refused now, not after people approved it.
        let any_base = url::Url::parse("https://api.invalid/").expect("valid URL");
        crate::usage::proxy::upstream_url(&any_base, &request.path, request.query.as_deref())?;
        if crate::usage::proxy::content_length(&request.headers).is_some_and(|n| n > HELD_BODY_LIMIT) {
            return Err(body_too_large());
        }
        let body = metered_request(request.body, self.config.proxy_limits.max_request_bytes, meter.clone());
        let body = match OutgoingBody::keep_up_to(body, HELD_BODY_LIMIT).await {
            Ok(OutgoingBody::Kept(bytes)) => bytes,
            Ok(OutgoingBody::Streamed(_)) => return Err(body_too_large()),
            Err(_) => return Err(ServiceError::invalid("invalid_request_body", "the request body could not be read")),
        };
        let headers = crate::usage::proxy::headers::request_headers(&request.headers)
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), STANDARD.encode(value.as_bytes())))
            .collect();
        let query = request.query.clone().filter(|q| !q.is_empty());
        let held =
            HeldRequest { headers, body: STANDARD.encode(&body), query: query.clone(), base_url: subject.base_url };
        let id = IdKind::Approval.generate();
        let plain = serde_json::to_vec(&held).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let sealed = self.keys.seal(&seal_context(&id, "request"), &plain).await?;
        let now = self.now().as_millis();
        let key = context.key.as_ref();
        let record = ApprovalRecord {
            id: id.clone(),
            app_id: app_id.to_owned(),
            grant_id: subject.grant_id.to_owned(),
            provider: subject.provider.to_owned(),
            end_user_id: subject.end_user_id.map(str::to_owned),
            agent_id: key.and_then(|k| k.agent_id.clone()),
            api_key_id: key.map(|k| k.key_id.clone()),
            actor_type: context.actor.kind.clone(),
            actor_id: context.actor.id.clone(),
            actor_reason: context.actor.reason.clone(),
            method: request.method.as_str().to_owned(),
            path: if request.path.starts_with('/') { request.path.clone() } else { format!("/{}", request.path) },
            query: query_names(query.as_deref()),
            request: Some(sealed),
            body_bytes: body.len() as i64,
            policy_id: hold.policy_id.clone(),
            rule: serde_json::to_string(&hold.rule).map_err(|e| ServiceError::Internal(e.to_string()))?,
            status: "pending".into(),
            decisions: "[]".into(),
            created_at: now,
            expires_at: now + hold.rule.expires_in_ms(),
            ..ApprovalRecord::default()
        };
        self.store.insert_approval(&record).await?;
        tracing::info!(app_id, approval_id = %id, grant_id = subject.grant_id, policy_id = %hold.policy_id, "proxied call held for approval");
        let entry = crate::audit::AuditEntry::config(app_id, "approval.requested", &id, context);
        self.audit(entry.with_grant_id(subject.grant_id));
        let view = self.approval_view(&record)?;
        let data = json!({
            "approval_id": id,
            "grant_id": record.grant_id,
            "provider": record.provider,
            "end_user_id": record.end_user_id,
            "agent_id": record.agent_id,
            "method": record.method,
            "path": record.path,
            "reason": record.actor_reason,
            "approvers": view.approvers,
            "expires_at": view.expires_at,
        });
        self.emit_event(app_id, "approval.requested", data).await?;
        Ok(view)
    }

    /// Opens a held call's sealed request.
    pub(crate) async fn open_held_request(&self, record: &ApprovalRecord) -> Result<HeldRequest, ServiceError> {
        let sealed = record.request.as_ref().ok_or_else(|| ServiceError::Gone {
            code: "approval_request_gone",
            message: "the held call is no longer stored".into(),
        })?;
        let plain = self.keys.open(&seal_context(&record.id, "request"), sealed).await?;
        serde_json::from_slice(&plain).map_err(|e| ServiceError::Internal(format!("held request: {e}")))
    }
}
