//! Executing an approved call, exactly once: the caller that asked claims the approval
//! (`approved` -> `executing`, a compare-and-swap only one caller wins), the held request goes
//! through the proxy again with every policy checked as it stands now (only the approval rules
//! are satisfied), and the provider's answer is returned and kept sealed until fetched or
//! expired. An execution that dies with its instance ends `failed`, never runs twice.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use tokenvault_store::{ApprovalRecord, ExecutionEnd};

use crate::usage::approvals::hold::seal_context;
use crate::usage::approvals::{RESULT_KEPT_MS, effective_status, is_requester};
use crate::usage::proxy::{ProxyOutcome, ProxyRequest};
use crate::{CallContext, ServiceError, Vault};

/// Largest provider answer an approved call keeps for the caller.
pub const MAX_RESULT_BYTES: usize = 1024 * 1024;

/// The provider's answer to an approved call.
pub struct ApprovalResult {
    pub approval_id: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The sealed part of a kept answer.
#[derive(Serialize, Deserialize)]
struct KeptAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn not_the_requester() -> ServiceError {
    ServiceError::Forbidden {
        code: "not_the_requester",
        message: "only the caller that asked for this call (its key, or its agent) can execute it".into(),
    }
}

fn decode_headers(pairs: &[(String, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        let value = STANDARD.decode(value).ok().and_then(|v| HeaderValue::from_bytes(&v).ok());
        if let (Ok(name), Some(value)) = (HeaderName::from_bytes(name.as_bytes()), value) {
            headers.append(name, value);
        }
    }
    headers
}

fn encode_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(n, v)| (n.as_str().to_owned(), STANDARD.encode(v.as_bytes()))).collect()
}

impl Vault {
    /// The approval, if the caller is the one that asked for it (only it executes and fetches).
    async fn requested_approval(
        &self,
        app_id: &str,
        id: &str,
        context: &CallContext,
    ) -> Result<ApprovalRecord, ServiceError> {
        let record = self.visible_approval(app_id, id, context).await?;
        if !is_requester(&record, context) {
            return Err(not_the_requester());
        }
        Ok(record)
    }

    /// `POST /v1/approvals/{id}/execute`.
    pub async fn execute_approval(
        &self,
        app_id: &str,
        id: &str,
        context: &CallContext,
    ) -> Result<ApprovalResult, ServiceError> {
        let record = self.requested_approval(app_id, id, context).await?;
        let now = self.now().as_millis();
        match effective_status(&record, now) {
            "approved" => {}
            "pending" => return Err(ServiceError::conflict("approval_pending", "the call is not approved yet")),
            "denied" => return Err(ServiceError::conflict("approval_denied", "the call was denied")),
            "expired" => return Err(ServiceError::conflict("approval_expired", "the approval expired")),
            _ => return Err(already_executed()),
        }
        if !self.store.claim_approval_execution(&record.id, now).await? {
            return Err(already_executed());
        }
        self.approval_changes.notify_waiters();
        let outcome = self.run_approved(&record, context).await;
        let at = self.now().as_millis();
        let end = |status, error_code: Option<&str>| ExecutionEnd {
            status,
            result_status: None,
            result: None,
            result_expires_at: None,
            error_code: error_code.map(str::to_owned),
            at,
        };
        let finished = match outcome {
            Ok((result, Some(body))) => {
                let kept = KeptAnswer {
                    status: result.status,
                    headers: encode_headers(&result.headers),
                    body: STANDARD.encode(&body),
                };
                let plain = serde_json::to_vec(&kept).map_err(|e| ServiceError::Internal(e.to_string()))?;
                let sealed = self.keys.seal(&seal_context(&record.id, "result"), &plain).await?;
                let ending = ExecutionEnd {
                    result_status: Some(i64::from(result.status)),
                    result: Some(sealed),
                    result_expires_at: Some(at + RESULT_KEPT_MS),
                    ..end("executed", None)
                };
                self.store.finish_approval_execution(&record.id, &ending).await?;
                Ok(ApprovalResult { body, ..result })
            }
            Ok((result, None)) => {
                let ending = ExecutionEnd {
                    result_status: Some(i64::from(result.status)),
                    ..end("executed", Some("result_too_large"))
                };
                self.store.finish_approval_execution(&record.id, &ending).await?;
                Err(ServiceError::Gateway {
                    status: 502,
                    code: "approval_result_too_large",
                    message: format!(
                        "the call was executed; its answer is larger than {MAX_RESULT_BYTES} bytes and was not kept"
                    ),
                })
            }
            // Nothing was sent: the approval can be executed again once the limit allows.
            Err(limited @ ServiceError::RateLimited { .. }) => {
                self.store.release_approval_execution(&record.id).await?;
                Err(limited)
            }
            Err(error) => {
                self.store
                    .finish_approval_execution(&record.id, &end("failed", Some(crate::audit::error_code(&error))))
                    .await?;
                Err(error)
            }
        };
        let action = if finished.is_ok() { "approval.executed" } else { "approval.execution_failed" };
        tracing::info!(approval_id = %record.id, action, "approved call executed");
        let entry = crate::audit::AuditEntry::config(app_id, action, &record.id, context);
        self.audit(entry.with_grant_id(&record.grant_id));
        self.approval_changes.notify_waiters();
        finished
    }

    /// The held request through the proxy; the answer's body is read whole (`None` if over the
    /// kept limit).
    async fn run_approved(
        &self,
        record: &ApprovalRecord,
        context: &CallContext,
    ) -> Result<(ApprovalResult, Option<Bytes>), ServiceError> {
        let held = self.open_held_request(record).await?;
        let mut headers = decode_headers(&held.headers);
        if let Some(base) = held.base_url.as_deref().and_then(|b| HeaderValue::from_str(b).ok()) {
            headers.insert(crate::usage::base_urls::BASE_URL_HEADER, base);
        }
        let body = Bytes::from(STANDARD.decode(&held.body).map_err(|e| ServiceError::Internal(e.to_string()))?);
        let method = Method::from_bytes(record.method.as_bytes()).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let request = ProxyRequest {
            method,
            path: record.path.clone(),
            query: held.query.clone(),
            headers,
            body: Box::pin(futures_util::stream::once(async move { Ok(body) })),
        };
        let response =
            match self.proxy_call(&record.app_id, &record.grant_id, request, context, Some(&record.id)).await? {
                ProxyOutcome::Forwarded(response) => response,
                ProxyOutcome::Held(_) => return Err(ServiceError::Internal("an approved call was held again".into())),
            };
        let result = ApprovalResult {
            approval_id: record.id.clone(),
            status: response.status,
            headers: response.headers,
            body: Bytes::new(),
        };
        let body = crate::usage::proxy::read_capped(response.body, MAX_RESULT_BYTES).await?;
        Ok((result, body))
    }

    /// `GET /v1/approvals/{id}/result`: the kept answer of an executed call, once; it is erased
    /// when fetched (or 15 minutes after the execution).
    pub async fn approval_result(
        &self,
        app_id: &str,
        id: &str,
        context: &CallContext,
    ) -> Result<ApprovalResult, ServiceError> {
        let record = self.requested_approval(app_id, id, context).await?;
        let gone = || ServiceError::Gone {
            code: "approval_result_gone",
            message: "the answer was already fetched or is no longer kept".into(),
        };
        match record.status.as_str() {
            "executed" => {}
            "failed" => {
                return Err(ServiceError::conflict(
                    "approval_failed",
                    format!("the execution failed: {}", record.error_code.as_deref().unwrap_or("unknown")),
                ));
            }
            _ => return Err(ServiceError::conflict("approval_not_executed", "the call has not been executed")),
        }
        let sealed = record.result.as_ref().ok_or_else(gone)?;
        let plain = self.keys.open(&seal_context(&record.id, "result"), sealed).await?;
        if !self.store.take_approval_result(&record.id).await? {
            return Err(gone());
        }
        let kept: KeptAnswer = serde_json::from_slice(&plain).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(ApprovalResult {
            approval_id: record.id,
            status: kept.status,
            headers: decode_headers(&kept.headers),
            body: Bytes::from(STANDARD.decode(kept.body).map_err(|e| ServiceError::Internal(e.to_string()))?),
        })
    }
}

fn already_executed() -> ServiceError {
    ServiceError::conflict("already_executed", "the call was already executed (or is being executed)")
}
