//! Approvals of held proxied calls and the one-use links approvers open. Every change of state
//! is a compare-and-swap on the status (and the decisions seen), so two approvers deciding at
//! once, or two callers executing at once, cannot both win: a held call runs at most once.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApprovalRecord {
    pub id: String,
    pub app_id: String,
    pub grant_id: String,
    pub provider: String,
    pub end_user_id: Option<String>,
    pub agent_id: Option<String>,
    pub api_key_id: Option<String>,
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub actor_reason: Option<String>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Sealed: the headers that would be sent and the body.
    pub request: Option<Vec<u8>>,
    pub body_bytes: i64,
    pub policy_id: String,
    /// The rule as it was when the call was held (JSON).
    pub rule: String,
    pub status: String,
    /// JSON list of decisions.
    pub decisions: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub decided_at: Option<Millis>,
    pub executed_at: Option<Millis>,
    pub result_status: Option<i64>,
    /// Sealed: the upstream answer (status, headers, body), until fetched or expired.
    pub result: Option<Vec<u8>>,
    pub result_expires_at: Option<Millis>,
    pub error_code: Option<String>,
}

const COLUMNS: &str = "id, app_id, grant_id, provider, end_user_id, agent_id, api_key_id, actor_type, actor_id, \
     actor_reason, method, path, query, request, body_bytes, policy_id, rule, status, decisions, created_at, \
     expires_at, decided_at, executed_at, result_status, result, result_expires_at, error_code";

impl ApprovalRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            grant_id: row.try_get("grant_id")?,
            provider: row.try_get("provider")?,
            end_user_id: row.try_get("end_user_id")?,
            agent_id: row.try_get("agent_id")?,
            api_key_id: row.try_get("api_key_id")?,
            actor_type: row.try_get("actor_type")?,
            actor_id: row.try_get("actor_id")?,
            actor_reason: row.try_get("actor_reason")?,
            method: row.try_get("method")?,
            path: row.try_get("path")?,
            query: row.try_get("query")?,
            request: row.try_get("request")?,
            body_bytes: row.try_get("body_bytes")?,
            policy_id: row.try_get("policy_id")?,
            rule: row.try_get("rule")?,
            status: row.try_get("status")?,
            decisions: row.try_get("decisions")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            decided_at: row.try_get("decided_at")?,
            executed_at: row.try_get("executed_at")?,
            result_status: row.try_get("result_status")?,
            result: row.try_get("result")?,
            result_expires_at: row.try_get("result_expires_at")?,
            error_code: row.try_get("error_code")?,
        })
    }
}

/// Which approvals a listing returns.
#[derive(Debug, Default, Clone)]
pub struct ApprovalFilter<'a> {
    /// `pending`, `approved` and `expired` are judged at `now` (past its expiry, either is expired).
    pub status: Option<&'a str>,
    /// Only the approvals this agent asked for.
    pub agent_id: Option<&'a str>,
    pub grant_id: Option<&'a str>,
    pub now: Millis,
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct ExecutionEnd {
    /// `executed` or `failed`.
    pub status: &'static str,
    pub result_status: Option<i64>,
    pub result: Option<Vec<u8>>,
    pub result_expires_at: Option<Millis>,
    pub error_code: Option<String>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalLinkRecord {
    pub id: String,
    pub approval_id: String,
    pub token_hash: String,
    /// `end_user` or `operator`.
    pub approver: String,
    /// The key that made the link.
    pub created_by: Option<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub used_at: Option<Millis>,
}

impl ApprovalLinkRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            approval_id: row.try_get("approval_id")?,
            token_hash: row.try_get("token_hash")?,
            approver: row.try_get("approver")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            used_at: row.try_get("used_at")?,
        })
    }
}

impl Store {
    pub async fn insert_approval(&self, a: &ApprovalRecord) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO approvals ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18, $19, $20, $21, NULL, NULL, NULL, NULL, NULL, NULL)"
        )))
        .bind(&a.id)
        .bind(&a.app_id)
        .bind(&a.grant_id)
        .bind(&a.provider)
        .bind(&a.end_user_id)
        .bind(&a.agent_id)
        .bind(&a.api_key_id)
        .bind(&a.actor_type)
        .bind(&a.actor_id)
        .bind(&a.actor_reason)
        .bind(&a.method)
        .bind(&a.path)
        .bind(&a.query)
        .bind(&a.request)
        .bind(a.body_bytes)
        .bind(&a.policy_id)
        .bind(&a.rule)
        .bind(&a.status)
        .bind(&a.decisions)
        .bind(a.created_at)
        .bind(a.expires_at)
        .execute(&self.writer)
        .await
        .map_err(|e| StoreError::unique_as_conflict(e, "approval id already exists"))?;
        Ok(())
    }

    /// One approval of the app (another app's is "not found").
    pub async fn get_approval(&self, app_id: &str, id: &str) -> Result<ApprovalRecord, StoreError> {
        self.retrying(|| async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM approvals WHERE id = $1 AND app_id = $2"
            )))
            .bind(id)
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(ApprovalRecord::from_row(&row)?)
        })
        .await
    }

    /// An approval by id alone: for a link, whose secret already proves the right to see it.
    pub async fn find_approval_by_id(&self, id: &str) -> Result<ApprovalRecord, StoreError> {
        self.retrying(|| async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM approvals WHERE id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(ApprovalRecord::from_row(&row)?)
        })
        .await
    }

    /// Gives an execution stopped before anything was sent (a rate limit) back to `approved`.
    pub async fn release_approval_execution(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE approvals SET status = 'approved', executed_at = NULL WHERE id = $1 AND status = 'executing'",
        )
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A page of the app's approvals, newest first, before the `before` id.
    pub async fn list_approvals(
        &self,
        app_id: &str,
        filter: &ApprovalFilter<'_>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        // Past its expiry, `pending` or `approved` is `expired`, whether or not the sweeper wrote it yet.
        let status = match filter.status {
            None => "",
            Some("pending") => " AND status = 'pending' AND expires_at > $6",
            Some("approved") => " AND status = 'approved' AND expires_at > $6",
            Some("expired") => " AND (status = 'expired' OR (status IN ('pending', 'approved') AND expires_at <= $6))",
            Some(_) => " AND status = $7",
        };
        self.retrying(|| async move {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM approvals WHERE app_id = $1 AND ($2 = '' OR id < $2) \
                 AND ($3 = '' OR agent_id = $3) AND ($4 = '' OR grant_id = $4) \
                 AND $6 = $6 AND $7 = $7{status} ORDER BY id DESC LIMIT $5"
            )))
            .bind(app_id)
            .bind(before.unwrap_or(""))
            .bind(filter.agent_id.unwrap_or(""))
            .bind(filter.grant_id.unwrap_or(""))
            .bind(limit)
            .bind(filter.now)
            .bind(filter.status.unwrap_or(""))
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(ApprovalRecord::from_row).collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Records a decision if nobody changed the approval since it was read (`seen_decisions`)
    /// and it is still pending and unexpired. `false`: lost the race, read again.
    pub async fn record_approval_decision(
        &self,
        id: &str,
        seen_decisions: &str,
        decisions: &str,
        status: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let decided_at = (status != "pending").then_some(now);
        let erase_request = status == "denied";
        let done = sqlx::query(
            "UPDATE approvals SET decisions = $1, status = $2, expires_at = $3, decided_at = $4, \
             request = CASE WHEN $5 = 1 THEN NULL ELSE request END \
             WHERE id = $6 AND status = 'pending' AND decisions = $7 AND expires_at > $8",
        )
        .bind(decisions)
        .bind(status)
        .bind(expires_at)
        .bind(decided_at)
        .bind(i64::from(erase_request))
        .bind(id)
        .bind(seen_decisions)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves an approved, unexpired approval to `executing`; only one caller ever wins.
    pub async fn claim_approval_execution(&self, id: &str, now: Millis) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE approvals SET status = 'executing', executed_at = $1 \
             WHERE id = $2 AND status = 'approved' AND expires_at > $1",
        )
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends an execution: the held request is erased, the result (sealed) kept until fetched.
    pub async fn finish_approval_execution(&self, id: &str, end: &ExecutionEnd) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE approvals SET status = $1, result_status = $2, result = $3, result_expires_at = $4, \
             error_code = $5, executed_at = $6, request = NULL WHERE id = $7 AND status = 'executing'",
        )
        .bind(end.status)
        .bind(end.result_status)
        .bind(&end.result)
        .bind(end.result_expires_at)
        .bind(&end.error_code)
        .bind(end.at)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Erases a fetched result; `false` if there was none left to erase.
    pub async fn take_approval_result(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE approvals SET result = NULL WHERE id = $1 AND result IS NOT NULL")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The sweeper's pass: pending or approved approvals past their expiry become `expired`
    /// (their held request erased); an execution that started before `stale_before` and never
    /// finished (the instance died) becomes `failed` without being retried, since the call may
    /// have been sent; results past their keeping time are erased. Returns the rows changed.
    pub async fn sweep_approvals(&self, now: Millis, stale_before: Millis) -> Result<u64, StoreError> {
        let expired = sqlx::query(
            "UPDATE approvals SET status = 'expired', request = NULL \
             WHERE status IN ('pending', 'approved') AND expires_at <= $1",
        )
        .bind(now)
        .execute(&self.writer)
        .await?
        .rows_affected();
        let interrupted = sqlx::query(
            "UPDATE approvals SET status = 'failed', error_code = 'execution_interrupted', request = NULL \
             WHERE status = 'executing' AND executed_at < $1",
        )
        .bind(stale_before)
        .execute(&self.writer)
        .await?
        .rows_affected();
        let erased =
            sqlx::query("UPDATE approvals SET result = NULL WHERE result IS NOT NULL AND result_expires_at <= $1")
                .bind(now)
                .execute(&self.writer)
                .await?
                .rows_affected();
        Ok(expired + interrupted + erased)
    }

    pub async fn insert_approval_link(&self, link: &ApprovalLinkRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO approval_links (id, approval_id, token_hash, approver, created_by, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(&link.id)
        .bind(&link.approval_id)
        .bind(&link.token_hash)
        .bind(&link.approver)
        .bind(&link.created_by)
        .bind(link.created_at)
        .bind(link.expires_at)
        .execute(&self.writer)
        .await
        .map_err(|e| StoreError::unique_as_conflict(e, "approval link already exists"))?;
        Ok(())
    }

    pub async fn find_approval_link(&self, token_hash: &str) -> Result<ApprovalLinkRecord, StoreError> {
        self.retrying(|| async move {
            let row = sqlx::query(
                "SELECT id, approval_id, token_hash, approver, created_by, created_at, expires_at, used_at \
                 FROM approval_links WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(ApprovalLinkRecord::from_row(&row)?)
        })
        .await
    }

    /// Spends a link; `false` if it was already used.
    pub async fn use_approval_link(&self, id: &str, now: Millis) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE approval_links SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
