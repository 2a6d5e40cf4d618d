//! Deciding on a held call: the app's operators (its keys, never an agent's, never the key that
//! asked) decide through the API, the end user through a one-use link the app hands them (or the
//! app's backend on the end user's behalf). N distinct approvals approve; one denial denies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokenvault_store::{ApprovalLinkRecord, ApprovalRecord};

use crate::usage::approvals::{ApprovalView, StoredDecision, decisions_of, effective_status, is_requester, rule_of};
use crate::values::secrets::{hash_secret, random_secret};
use crate::{CallContext, IdKind, ServiceError, Timestamp, Vault};

const MAX_COMMENT: usize = 500;

/// `POST /v1/approvals/{id}/approve` and `/deny`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecisionInput {
    /// Shown to the caller and kept in the approval (at most 500 characters).
    #[serde(default)]
    pub comment: Option<String>,
    /// `operator` (default): the key's own decision; `end_user`: the app's backend records the
    /// end user's decision (the app authenticated them).
    #[serde(default)]
    pub on_behalf_of: Option<String>,
}

/// `POST /v1/approvals/{id}/links`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalLinkInput {
    /// `end_user` (default) or `operator`.
    #[serde(default)]
    pub approver: Option<String>,
}

/// No `Debug`: the URL carries the link's secret.
#[derive(Clone, Serialize)]
pub struct ApprovalLinkView {
    pub id: String,
    pub approval_id: String,
    pub approver: String,
    /// Open in a browser: shows the held call with approve and deny buttons. Works once.
    pub url: String,
    pub expires_at: Timestamp,
}

/// The approval a link opens, for the page.
pub struct LinkedApproval {
    pub approval: ApprovalView,
    pub approver: String,
    /// The held call's body as text, when it is UTF-8 (up to 4 KiB), for the approver to read.
    pub body_preview: Option<String>,
    /// The held call's query as it will be sent.
    pub query: Option<String>,
}

/// Who decides, as counted: each identity counts once.
struct Approver {
    kind: &'static str,
    identity: String,
    by: String,
}

fn link_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(hash_secret("approval link", token))
}

fn allows(approvers: &str, kind: &str) -> bool {
    match approvers {
        "operators" => kind == "operator",
        "end_user" => kind == "end_user",
        _ => true,
    }
}

fn comment_of(comment: Option<String>) -> Result<Option<String>, ServiceError> {
    match comment {
        Some(c) if c.chars().count() > MAX_COMMENT || c.chars().any(|ch| ch.is_control() && ch != '\n') => Err(
            ServiceError::invalid("invalid_comment", "`comment` is at most 500 characters, without control characters"),
        ),
        other => Ok(other.filter(|c| !c.is_empty())),
    }
}

/// Why a non-pending approval takes no decision.
fn closed(record: &ApprovalRecord, now: i64) -> ServiceError {
    match effective_status(record, now) {
        "expired" => ServiceError::conflict("approval_expired", "the approval expired before it was decided"),
        status => ServiceError::conflict("approval_decided", format!("the approval is already {status}")),
    }
}

/// The caller as an approver through the API: an app key that is neither an agent's nor the one
/// that asked.
fn api_approver(
    record: &ApprovalRecord,
    context: &CallContext,
    on_behalf_of: Option<&str>,
) -> Result<Approver, ServiceError> {
    let key = context.key.as_ref().ok_or(ServiceError::Forbidden {
        code: "approver_not_allowed",
        message: "only an API key of the app can decide".into(),
    })?;
    if key.agent_id.is_some() {
        return Err(ServiceError::Forbidden {
            code: "agent_cannot_approve",
            message: "an agent key cannot decide on approvals".into(),
        });
    }
    if is_requester(record, context) {
        return Err(ServiceError::Forbidden {
            code: "self_approval",
            message: "the key that asked for the call cannot decide on it".into(),
        });
    }
    match on_behalf_of.unwrap_or("operator") {
        "operator" => Ok(Approver { kind: "operator", identity: key.key_id.clone(), by: key.key_id.clone() }),
        "end_user" => Ok(Approver { kind: "end_user", identity: "end_user".into(), by: key.key_id.clone() }),
        _ => Err(ServiceError::invalid("invalid_approver", "`on_behalf_of` is `operator` or `end_user`")),
    }
}

impl Vault {
    /// Approves (`approve`) or denies a pending approval as the calling key.
    pub async fn decide_approval(
        &self,
        app_id: &str,
        id: &str,
        approve: bool,
        input: ApprovalDecisionInput,
        context: &CallContext,
    ) -> Result<ApprovalView, ServiceError> {
        let comment = comment_of(input.comment)?;
        let id = IdKind::Approval.parse(id)?;
        let record = self.store.get_approval(app_id, &id).await.map_err(ServiceError::from_store("approval"))?;
        let approver = api_approver(&record, context, input.on_behalf_of.as_deref())?;
        self.record_decision(record, approver, approve, comment, context).await
    }

    /// Approves or denies a pending approval as a portal operator: one distinct `operator`
    /// approver per operator (recorded by the operator's id), under the same rules as a key's
    /// decision (the rule's approvers, one decision each, expiry, N of M).
    pub async fn decide_approval_as_operator(
        &self,
        app_id: &str,
        id: &str,
        approve: bool,
        comment: Option<String>,
        operator: &crate::OperatorView,
        context: &CallContext,
    ) -> Result<ApprovalView, ServiceError> {
        let comment = comment_of(comment)?;
        let id = IdKind::Approval.parse(id)?;
        let record = self.store.get_approval(app_id, &id).await.map_err(ServiceError::from_store("approval"))?;
        let approver = Approver { kind: "operator", identity: operator.id.clone(), by: operator.id.clone() };
        self.record_decision(record, approver, approve, comment, context).await
    }

    /// Adds one decision, retrying when another approver decided at the same moment.
    async fn record_decision(
        &self,
        mut record: ApprovalRecord,
        approver: Approver,
        approve: bool,
        comment: Option<String>,
        context: &CallContext,
    ) -> Result<ApprovalView, ServiceError> {
        loop {
            let now = self.now().as_millis();
            if effective_status(&record, now) != "pending" {
                return Err(closed(&record, now));
            }
            let rule = rule_of(&record)?;
            if !allows(rule.approvers(), approver.kind) {
                return Err(ServiceError::Forbidden {
                    code: "approver_not_allowed",
                    message: format!("this approval is for {} to decide", rule.approvers().replace('_', " ")),
                });
            }
            let mut decisions = decisions_of(&record)?;
            let identity = |d: &StoredDecision| {
                if d.approver == "end_user" { "end_user".to_owned() } else { d.by.clone() }
            };
            if decisions.iter().any(|d| identity(d) == approver.identity) {
                return Err(ServiceError::conflict("already_decided", "this approver has already decided"));
            }
            decisions.push(StoredDecision {
                decision: if approve { "approve" } else { "deny" }.into(),
                approver: approver.kind.into(),
                by: approver.by.clone(),
                comment: comment.clone(),
                at: now,
            });
            let approvals: Vec<&StoredDecision> = decisions.iter().filter(|d| d.decision == "approve").collect();
            let kinds_met = rule.approvers() != "both"
                || (approvals.iter().any(|d| d.approver == "operator")
                    && approvals.iter().any(|d| d.approver == "end_user"));
            let (status, expires_at) = if !approve {
                ("denied", record.expires_at)
            } else if approvals.len() as u32 >= rule.required() && kinds_met {
                // The caller gets a full term to execute, from the approval.
                ("approved", now + rule.expires_in_ms())
            } else {
                ("pending", record.expires_at)
            };
            let written = serde_json::to_string(&decisions).map_err(|e| ServiceError::Internal(e.to_string()))?;
            if self
                .store
                .record_approval_decision(&record.id, &record.decisions, &written, status, expires_at, now)
                .await?
            {
                let action = if approve { "approval.approved" } else { "approval.denied" };
                tracing::info!(approval_id = %record.id, approver = approver.kind, status, "approval decided");
                let entry = crate::audit::AuditEntry::config(&record.app_id, action, &record.id, context);
                self.audit(entry.with_grant_id(&record.grant_id));
                let fresh = self.store.get_approval(&record.app_id, &record.id).await?;
                if status != "pending" {
                    let data = json!({ "approval_id": record.id, "grant_id": record.grant_id, "status": status });
                    self.emit_event(&record.app_id, "approval.decided", data).await?;
                }
                self.approval_changes.notify_waiters();
                return self.approval_view(&fresh);
            }
            record = self.store.get_approval(&record.app_id, &record.id).await?;
        }
    }

    /// A one-use page link for an approver: the end user (whom the app sends it to) or an operator
    /// (acting as the key that made it).
    pub async fn create_approval_link(
        &self,
        app_id: &str,
        id: &str,
        input: ApprovalLinkInput,
        context: &CallContext,
    ) -> Result<ApprovalLinkView, ServiceError> {
        let id = IdKind::Approval.parse(id)?;
        let record = self.store.get_approval(app_id, &id).await.map_err(ServiceError::from_store("approval"))?;
        let approver = input.approver.unwrap_or_else(|| "end_user".into());
        let as_approver = match approver.as_str() {
            "end_user" | "operator" => {
                api_approver(&record, context, Some(if approver == "end_user" { "end_user" } else { "operator" }))?
            }
            _ => return Err(ServiceError::invalid("invalid_approver", "`approver` is `end_user` or `operator`")),
        };
        let now = self.now().as_millis();
        if effective_status(&record, now) != "pending" {
            return Err(closed(&record, now));
        }
        let rule = rule_of(&record)?;
        if !allows(rule.approvers(), as_approver.kind) {
            return Err(ServiceError::Forbidden {
                code: "approver_not_allowed",
                message: format!("this approval is for {} to decide", rule.approvers().replace('_', " ")),
            });
        }
        let token = random_secret();
        let link = ApprovalLinkRecord {
            id: IdKind::ApprovalLink.generate(),
            approval_id: record.id.clone(),
            token_hash: link_hash(&token),
            approver: approver.clone(),
            created_by: context.key.as_ref().map(|k| k.key_id.clone()),
            created_at: now,
            expires_at: record.expires_at,
            used_at: None,
        };
        self.store.insert_approval_link(&link).await?;
        let entry = crate::audit::AuditEntry::config(app_id, "approval.link_created", &record.id, context);
        self.audit(entry.with_grant_id(&record.grant_id));
        let mut url = self.config.public_url.clone();
        url.set_path(&format!("/approve/{token}"));
        Ok(ApprovalLinkView {
            id: link.id,
            approval_id: record.id,
            approver,
            url: url.to_string(),
            expires_at: Timestamp::from_millis(link.expires_at),
        })
    }

    async fn open_link(&self, token: &str) -> Result<(ApprovalLinkRecord, ApprovalRecord), ServiceError> {
        let link = self
            .store
            .find_approval_link(&link_hash(token))
            .await
            .map_err(ServiceError::from_store("approval link"))?;
        if link.used_at.is_some() {
            return Err(ServiceError::Gone {
                code: "link_used",
                message: "this approval link was already used".into(),
            });
        }
        let record =
            self.store.find_approval_by_id(&link.approval_id).await.map_err(ServiceError::from_store("approval"))?;
        Ok((link, record))
    }

    /// What an approval link shows.
    pub async fn approval_by_link(&self, token: &str) -> Result<LinkedApproval, ServiceError> {
        let (link, record) = self.open_link(token).await?;
        let (body_preview, query) = match self.open_held_request(&record).await {
            Ok(held) => {
                let body = base64::engine::general_purpose::STANDARD
                    .decode(held.body)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|b| !b.is_empty())
                    .map(|b| b.chars().take(4096).collect());
                (body, held.query)
            }
            Err(_) => (None, None),
        };
        Ok(LinkedApproval { approval: self.approval_view(&record)?, approver: link.approver, body_preview, query })
    }

    /// Decides through a link, which is spent by it.
    pub async fn decide_by_link(
        &self,
        token: &str,
        approve: bool,
        comment: Option<String>,
    ) -> Result<ApprovalView, ServiceError> {
        let comment = comment_of(comment)?;
        let (link, record) = self.open_link(token).await?;
        let now = self.now().as_millis();
        if effective_status(&record, now) != "pending" {
            return Err(closed(&record, now));
        }
        if !self.store.use_approval_link(&link.id, now).await? {
            return Err(ServiceError::Gone {
                code: "link_used",
                message: "this approval link was already used".into(),
            });
        }
        let approver = if link.approver == "end_user" {
            Approver { kind: "end_user", identity: "end_user".into(), by: link.id.clone() }
        } else {
            let key = link.created_by.clone().unwrap_or_else(|| link.id.clone());
            Approver { kind: "operator", identity: key.clone(), by: key }
        };
        let context = CallContext::default();
        self.record_decision(record, approver, approve, comment, &context).await
    }
}
