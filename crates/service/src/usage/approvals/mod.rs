//! Approvals: a proxied call a `require_approval` policy rule holds instead of forwarding. The
//! call is stored sealed ([`hold`]), people decide on it through the API or a one-use link
//! ([`decide`]), and the caller that asked executes it, exactly once and under the policies in
//! force at that moment, and fetches the provider's answer ([`execute`]). Every state change is a
//! compare-and-swap in the store, so racing approvers or executors cannot double anything.

pub(crate) mod decide;
pub(crate) mod execute;
pub(crate) mod hold;

use std::time::Duration;

use serde::Serialize;
use tokenvault_store::{ApprovalFilter, ApprovalRecord};

use crate::access::policies::ApprovalRule;
use crate::access::scopes::{Level, Required, Resource, Scope};
use crate::{CallContext, IdKind, PageSize, ServiceError, Timestamp, Vault};

/// Longest `wait` of a long poll: within the HTTP layer's 30-second request timeout.
pub const MAX_WAIT_SECONDS: u64 = 25;
/// How long an executed call's answer is kept for the caller to fetch.
pub(crate) const RESULT_KEPT_MS: i64 = 15 * 60 * 1000;
/// An execution still unfinished this long after it started died with its instance.
const STALE_EXECUTION_MS: i64 = 10 * 60 * 1000;
pub const APPROVAL_STATUSES: &[&str] = &["pending", "approved", "denied", "expired", "executing", "executed", "failed"];

/// One decision as stored (`at` in Unix milliseconds).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub(crate) struct StoredDecision {
    pub decision: String,
    pub approver: String,
    pub by: String,
    pub comment: Option<String>,
    pub at: i64,
}

/// One decision on an approval.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApprovalDecision {
    /// `approve` or `deny`.
    pub decision: String,
    /// `operator` or `end_user`.
    pub approver: String,
    /// Who decided: the API key (`key_…`) or the link (`apl_…`) used.
    pub by: String,
    pub comment: Option<String>,
    pub at: Timestamp,
}

/// Who asked for the held call.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRequester {
    pub api_key_id: Option<String>,
    pub agent_id: Option<String>,
    pub actor: crate::Actor,
}

/// The held call, as the provider would receive it (the credential aside).
#[derive(Debug, Clone, Serialize)]
pub struct HeldCallView {
    pub method: String,
    pub path: String,
    /// The query's parameter names (`a=&b=`); the values are sealed with the request.
    pub query: Option<String>,
    pub body_bytes: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    pub id: String,
    /// `pending`, `approved`, `denied`, `expired`, `executing`, `executed` or `failed`.
    pub status: String,
    pub grant_id: String,
    pub provider: String,
    pub end_user_id: Option<String>,
    pub requested_by: ApprovalRequester,
    pub request: HeldCallView,
    pub policy_id: String,
    /// `operators`, `end_user`, `either` or `both`.
    pub approvers: String,
    pub required_approvals: u32,
    pub decisions: Vec<ApprovalDecision>,
    pub created_at: Timestamp,
    /// Pending: until when approvers may decide; approved: until when it may be executed.
    pub expires_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    pub executed_at: Option<Timestamp>,
    /// The provider's status code, once executed.
    pub result_status: Option<i64>,
    /// Whether the provider's answer can still be fetched from `/result`.
    pub result_available: bool,
    /// Why an execution failed (`failed`), or why its answer was not kept.
    pub error_code: Option<String>,
    /// Where this approval is read and polled (`GET`, long-poll with `?wait=`).
    pub approval_url: String,
}

/// Who a held call is for, as the proxy resolved it.
pub(crate) struct HeldSubject<'a> {
    pub grant_id: &'a str,
    pub provider: &'a str,
    pub end_user_id: Option<&'a str>,
    pub base_url: Option<String>,
}

/// Listing filters.
#[derive(Debug, Default, Clone)]
pub struct ApprovalListQuery {
    pub status: Option<String>,
    pub grant_id: Option<String>,
    pub before: Option<String>,
    pub limit: Option<u32>,
}

pub(crate) fn rule_of(record: &ApprovalRecord) -> Result<ApprovalRule, ServiceError> {
    serde_json::from_str(&record.rule).map_err(|e| ServiceError::Internal(format!("approval rule: {e}")))
}

pub(crate) fn decisions_of(record: &ApprovalRecord) -> Result<Vec<StoredDecision>, ServiceError> {
    serde_json::from_str(&record.decisions).map_err(|e| ServiceError::Internal(format!("approval decisions: {e}")))
}

/// The status as of `now`: a pending or approved approval past its expiry is expired even before
/// the sweeper writes it.
pub(crate) fn effective_status(record: &ApprovalRecord, now: i64) -> &str {
    match record.status.as_str() {
        "pending" | "approved" if record.expires_at <= now => "expired",
        other => other,
    }
}

impl Vault {
    pub(crate) fn approval_view(&self, record: &ApprovalRecord) -> Result<ApprovalView, ServiceError> {
        let rule = rule_of(record)?;
        let mut url = self.config.public_url.clone();
        url.set_path(&format!("/v1/approvals/{}", record.id));
        Ok(ApprovalView {
            id: record.id.clone(),
            status: effective_status(record, self.now().as_millis()).to_owned(),
            grant_id: record.grant_id.clone(),
            provider: record.provider.clone(),
            end_user_id: record.end_user_id.clone(),
            requested_by: ApprovalRequester {
                api_key_id: record.api_key_id.clone(),
                agent_id: record.agent_id.clone(),
                actor: crate::Actor {
                    kind: record.actor_type.clone(),
                    id: record.actor_id.clone(),
                    reason: record.actor_reason.clone(),
                },
            },
            request: HeldCallView {
                method: record.method.clone(),
                path: record.path.clone(),
                query: record.query.clone(),
                body_bytes: record.body_bytes,
            },
            policy_id: record.policy_id.clone(),
            approvers: rule.approvers().to_owned(),
            required_approvals: rule.required(),
            decisions: decisions_of(record)?
                .into_iter()
                .map(|d| ApprovalDecision {
                    decision: d.decision,
                    approver: d.approver,
                    by: d.by,
                    comment: d.comment,
                    at: Timestamp::from_millis(d.at),
                })
                .collect(),
            created_at: Timestamp::from_millis(record.created_at),
            expires_at: Timestamp::from_millis(record.expires_at),
            decided_at: record.decided_at.map(Timestamp::from_millis),
            executed_at: record.executed_at.map(Timestamp::from_millis),
            result_status: record.result_status,
            result_available: record.result.is_some(),
            error_code: record.error_code.clone(),
            approval_url: url.to_string(),
        })
    }

    /// The approval as the caller may see it: an agent key sees only the approvals its agent
    /// asked for; another key of the app sees them all if it holds `approvals:read`, else only
    /// those it asked for. Anything else is "not found".
    pub(crate) async fn visible_approval(
        &self,
        app_id: &str,
        id: &str,
        context: &CallContext,
    ) -> Result<ApprovalRecord, ServiceError> {
        let id = IdKind::Approval.parse(id)?;
        let record = self.store.get_approval(app_id, &id).await.map_err(ServiceError::from_store("approval"))?;
        if may_read_all(context) || is_requester(&record, context) {
            Ok(record)
        } else {
            Err(ServiceError::not_found("approval"))
        }
    }

    /// `GET /v1/approvals/{id}`; with `wait`, answers as soon as the approval is no longer
    /// pending, or when `wait` has passed.
    pub async fn get_approval(
        &self,
        app_id: &str,
        id: &str,
        wait: Option<Duration>,
        context: &CallContext,
    ) -> Result<ApprovalView, ServiceError> {
        let deadline = wait.map(|w| tokio::time::Instant::now() + w.min(Duration::from_secs(MAX_WAIT_SECONDS)));
        loop {
            // Registered before the read, so a change between the read and the wait is not missed.
            let changed = self.approval_changes.notified();
            let record = self.visible_approval(app_id, id, context).await?;
            let now = self.now().as_millis();
            let Some(deadline) = deadline.filter(|_| effective_status(&record, now) == "pending") else {
                return self.approval_view(&record);
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return self.approval_view(&record);
            }
            // Another instance's change is seen within a second; this instance's at once.
            let _ = tokio::time::timeout(left.min(Duration::from_secs(1)), changed).await;
        }
    }

    /// The app's approvals, newest first (an agent key: its own only).
    pub async fn list_approvals(
        &self,
        app_id: &str,
        query: ApprovalListQuery,
        context: &CallContext,
    ) -> Result<Vec<ApprovalView>, ServiceError> {
        if let Some(status) = &query.status
            && !APPROVAL_STATUSES.contains(&status.as_str())
        {
            return Err(ServiceError::invalid(
                "invalid_status",
                format!("`status` is one of {}", APPROVAL_STATUSES.join(", ")),
            ));
        }
        let before = query.before.as_deref().map(|b| IdKind::Approval.parse(b)).transpose()?;
        let grant_id = query.grant_id.as_deref().map(|g| IdKind::Grant.parse(g)).transpose()?;
        let filter = ApprovalFilter {
            status: query.status.as_deref(),
            agent_id: context.agent_id(),
            grant_id: grant_id.as_deref(),
            now: self.now().as_millis(),
        };
        let limit = PageSize::LIST.resolve(query.limit)?;
        let records = self.store.list_approvals(app_id, &filter, before.as_deref(), i64::from(limit)).await?;
        records.iter().map(|r| self.approval_view(r)).collect()
    }

    /// Expires what ran out of time, fails executions whose instance died, erases kept answers
    /// past their time. Run every minute; also callable by tests and the CLI.
    pub async fn sweep_approvals(&self) -> Result<u64, ServiceError> {
        let now = self.now().as_millis();
        let changed = self.store.sweep_approvals(now, now - STALE_EXECUTION_MS).await?;
        if changed > 0 {
            self.approval_changes.notify_waiters();
        }
        Ok(changed)
    }

    pub async fn run_approval_sweeper(
        self: std::sync::Arc<Self>,
        interval: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        crate::periodic::run_sweep(interval, shutdown, "approval sweep", || {
            let vault = self.clone();
            async move { vault.sweep_approvals().await }
        })
        .await;
    }
}

/// Whether the key may read every approval of its app.
fn may_read_all(context: &CallContext) -> bool {
    context.key.as_ref().is_some_and(|k| {
        k.agent_id.is_none() && k.require(Required::Scope(Scope::level(Resource::Approvals, Level::Read))).is_ok()
    })
}

/// Whether the caller asked for this approval: the same key, or another key of the same agent.
pub(crate) fn is_requester(record: &ApprovalRecord, context: &CallContext) -> bool {
    let Some(key) = &context.key else { return false };
    match (&record.agent_id, &key.agent_id) {
        (Some(asked), Some(agent)) => asked == agent,
        (None, None) => record.api_key_id.as_deref() == Some(key.key_id.as_str()),
        _ => false,
    }
}
