//! Policies: rules attached to an app, a provider configuration, a grant, an agent or a
//! delegation, checked on every token retrieval and every proxied call. Every rule present must
//! allow the access; a rule that cannot be evaluated denies (default-deny). A denial names the
//! policy and rule, nothing more. A `require_approval` rule does not deny: it holds a matching
//! proxied call until people approve it (see `usage::approvals`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokenvault_store::PolicyRecord;

use crate::access::request::{Access, PolicyScope};
use crate::{CallContext, IdKind, ServiceError, Timestamp, Vault};

/// The rules of one policy. Absent fields do not restrict.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyRules {
    /// Allowed HTTP methods for proxied calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Allowed upstream paths for proxied calls: `*` matches within a segment, `**` anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// UTC windows in which access is allowed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::json_objects::opt_objects"
    )]
    pub time_windows: Option<Vec<TimeWindow>>,
    /// Caller IP ranges (CIDR) allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allowlist: Option<Vec<String>>,
    /// Token bucket per grant: `requests` per `per_seconds`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::json_objects::opt_object"
    )]
    pub rate_limit: Option<RateLimit>,
    /// The grant stops working this many days after it was connected.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::whole_numbers::opt_u32"
    )]
    pub max_grant_age_days: Option<u32>,
    /// `false`: the raw token never leaves the vault; the grant works only through the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_retrieval: Option<bool>,
    /// Declared actor types allowed (`ai_agent`, `service`, `user`, `system`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_types: Option<Vec<String>>,
    /// Declared actor ids allowed (`x-actor-id`, exact match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_ids: Option<Vec<String>>,
    /// Matching proxied calls wait for approval instead of being forwarded.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::json_objects::opt_object"
    )]
    pub require_approval: Option<ApprovalRule>,
}

/// Who may approve a held call.
pub(crate) const APPROVERS: &[&str] = &["operators", "end_user", "either", "both"];

/// `require_approval`: which proxied calls wait, for whom, and how long.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// Methods that need approval; absent: every method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Path patterns that need approval (`*` within a segment, `**` across); absent: every path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// `operators` (the app's keys; the default), `end_user`, `either` or `both`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<String>,
    /// Distinct approvals needed (1-10, default 1; with `both`, at least 2).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::whole_numbers::opt_u32"
    )]
    pub required_approvals: Option<u32>,
    /// Seconds the approvers have, and then the caller has to execute (60-86400, default 900).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::whole_numbers::opt_u64"
    )]
    pub expires_in: Option<u64>,
}

impl ApprovalRule {
    pub(crate) fn approvers(&self) -> &str {
        self.approvers.as_deref().unwrap_or("operators")
    }

    pub(crate) fn required(&self) -> u32 {
        let floor = if self.approvers() == "both" { 2 } else { 1 };
        self.required_approvals.unwrap_or(1).max(floor)
    }

    pub(crate) fn expires_in_ms(&self) -> i64 {
        self.expires_in.unwrap_or(900) as i64 * 1000
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        self.methods.as_ref().is_none_or(|m| m.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && self.paths.as_ref().is_none_or(|p| p.iter().any(|p| glob_match(p, &path)))
    }
}

/// A proxied call a `require_approval` rule holds.
#[derive(Debug, Clone)]
pub(crate) struct Hold {
    pub policy_id: String,
    pub rule: ApprovalRule,
}

/// What the policies decided about an allowed access: the audit wording, and whether a
/// `require_approval` rule holds the call.
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    pub text: String,
    pub hold: Option<Hold>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// `mon`..`sun`; default every day.
    #[serde(default)]
    pub days: Option<Vec<String>>,
    /// `HH:MM` UTC, inclusive.
    pub start: String,
    /// `HH:MM` UTC, exclusive.
    pub end: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(deserialize_with = "crate::values::whole_numbers::u32")]
    pub requests: u32,
    #[serde(deserialize_with = "crate::values::whole_numbers::u32")]
    pub per_seconds: u32,
}

impl RateLimit {
    /// The bucket's capacity and its refill rate in tokens per millisecond.
    fn rate(&self) -> (f64, f64) {
        let capacity = f64::from(self.requests.max(1));
        (capacity, capacity / (f64::from(self.per_seconds.max(1)) * 1000.0))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// `app`, `provider_config`, `grant`, `agent` (the agent's calls, on every grant it uses) or
    /// `delegation` (the calls made through one delegation).
    pub target_type: String,
    /// The provider configuration or grant id (omit for `app`).
    #[serde(default)]
    pub target_id: Option<String>,
    #[serde(deserialize_with = "crate::values::json_objects::object")]
    pub rules: PolicyRules,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    pub id: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub rules: serde_json::Value,
    pub created_at: Timestamp,
}

/// The audit wording of an allowing decision.
fn allowed_by(policy_ids: &[String]) -> String {
    if policy_ids.is_empty() {
        "no policy applies".to_owned()
    } else {
        format!("allowed by policies {}", policy_ids.join(", "))
    }
}

/// In-memory token buckets, keyed by (policy, grant). Per process: with several instances the
/// effective limit is at most the configured one per instance.
#[derive(Default)]
pub(crate) struct RateBuckets {
    buckets: Mutex<HashMap<(String, String), (f64, i64)>>,
}

impl RateBuckets {
    /// Takes one token; `Err(seconds)` until the next one if the bucket is empty.
    pub(crate) fn take(&self, key: (String, String), limit: RateLimit, now_ms: i64) -> Result<(), u64> {
        let (capacity, per_ms) = limit.rate();
        let mut buckets = self.buckets.lock().expect("poisoned");
        let (tokens, at) = buckets.entry(key).or_insert((capacity, now_ms));
        *tokens = (*tokens + (now_ms - *at).max(0) as f64 * per_ms).min(capacity);
        *at = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - *tokens) / per_ms) / 1000.0).ceil().max(1.0) as u64)
        }
    }
}

fn deny(policy: &str, rule: &str) -> ServiceError {
    ServiceError::Forbidden { code: "policy_denied", message: format!("denied by policy {policy} (rule `{rule}`)") }
}

fn parse_hhmm(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

const DAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Parses `a.b.c.d/n` or an IPv6 CIDR and tests membership.
fn cidr_contains(cidr: &str, ip: IpAddr) -> Option<bool> {
    let (net, bits) = cidr.split_once('/').map_or((cidr, None), |(n, b)| (n, Some(b)));
    let net: IpAddr = net.parse().ok()?;
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let bits: u32 = bits.map_or(Some(32), |b| b.parse().ok())?;
            (bits <= 32).then(|| {
                let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                u32::from(net) & mask == u32::from(ip) & mask
            })
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let bits: u32 = bits.map_or(Some(128), |b| b.parse().ok())?;
            (bits <= 128).then(|| {
                let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                u128::from(net) & mask == u128::from(ip) & mask
            })
        }
        (IpAddr::V4(_), IpAddr::V6(ip)) => {
            ip.to_ipv4_mapped().map(|v4| cidr_contains(cidr, IpAddr::V4(v4))).unwrap_or(Some(false))
        }
        (IpAddr::V6(_), IpAddr::V4(_)) => Some(false),
    }
}

/// `*` matches within one path segment, `**` matches anything (including `/`).
pub(crate) fn glob_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => (0..=s.len()).any(|i| go(&p[2..], &s[i..])),
            Some(b'*') => (0..=s.len()).take_while(|i| *i == 0 || s[i - 1] != b'/').any(|i| go(&p[1..], &s[i..])),
            Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

/// Validates rules at creation, so evaluation rarely meets a rule it cannot read.
fn validate_rules(rules: &PolicyRules) -> Result<(), ServiceError> {
    let invalid = |m: String| ServiceError::invalid("invalid_policy", m);
    if let Some(windows) = &rules.time_windows {
        for w in windows {
            if parse_hhmm(&w.start).is_none() || parse_hhmm(&w.end).is_none() {
                return Err(invalid("time windows use HH:MM (UTC)".into()));
            }
            if w.days.as_ref().is_some_and(|d| d.iter().any(|d| !DAYS.contains(&d.as_str()))) {
                return Err(invalid(format!("days are {}", DAYS.join(", "))));
            }
        }
    }
    if let Some(cidrs) = &rules.ip_allowlist
        && cidrs.iter().any(|c| cidr_contains(c, IpAddr::from([127, 0, 0, 1])).is_none())
    {
        return Err(invalid("`ip_allowlist` entries must be CIDR ranges such as 10.0.0.0/8".into()));
    }
    if rules.rate_limit.is_some_and(|r| r.requests == 0 || r.per_seconds == 0) {
        return Err(invalid("`rate_limit` needs positive `requests` and `per_seconds`".into()));
    }
    if let Some(methods) = &rules.methods
        && methods.iter().any(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(invalid("`methods` are upper-case HTTP methods".into()));
    }
    if rules
        .actor_ids
        .as_ref()
        .is_some_and(|ids| ids.is_empty() || ids.iter().any(|i| i.is_empty() || i.chars().count() > 128))
    {
        return Err(invalid("`actor_ids` is a non-empty list of actor ids (1-128 characters each)".into()));
    }
    if let Some(types) = &rules.actor_types
        && types.iter().any(|t| !crate::context::ACTOR_TYPES.contains(&t.as_str()))
    {
        return Err(invalid(format!("`actor_types` are {}", crate::context::ACTOR_TYPES.join(", "))));
    }
    if rules.paths.as_ref().is_some_and(|p| p.iter().any(|p| !p.starts_with('/'))) {
        return Err(invalid("`paths` start with `/`".into()));
    }
    if let Some(rule) = &rules.require_approval {
        validate_approval_rule(rule)?;
    }
    Ok(())
}

fn validate_approval_rule(rule: &ApprovalRule) -> Result<(), ServiceError> {
    let invalid = |m: String| ServiceError::invalid("invalid_policy", m);
    if let Some(methods) = &rule.methods
        && (methods.is_empty() || methods.iter().any(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase())))
    {
        return Err(invalid("`require_approval.methods` are upper-case HTTP methods".into()));
    }
    if rule.paths.as_ref().is_some_and(|p| {
        p.is_empty()
            || p.iter().any(|p| !p.starts_with('/') || p.chars().count() > 256 || p.chars().any(char::is_control))
    }) {
        return Err(invalid("`require_approval.paths` are patterns starting with `/`".into()));
    }
    if !APPROVERS.contains(&rule.approvers()) {
        return Err(invalid(format!("`require_approval.approvers` is one of {}", APPROVERS.join(", "))));
    }
    if rule.required_approvals.is_some_and(|n| !(1..=10).contains(&n)) {
        return Err(invalid("`require_approval.required_approvals` is 1 to 10".into()));
    }
    if rule.expires_in.is_some_and(|s| !(60..=86_400).contains(&s)) {
        return Err(invalid("`require_approval.expires_in` is 60 to 86400 seconds".into()));
    }
    Ok(())
}

impl Vault {
    pub async fn create_policy(
        &self,
        app_id: &str,
        input: PolicyInput,
        context: &CallContext,
    ) -> Result<PolicyView, ServiceError> {
        validate_rules(&input.rules)?;
        let target_id = match (input.target_type.as_str(), input.target_id) {
            ("app", None) => app_id.to_owned(),
            ("provider_config", Some(id)) => {
                let id = IdKind::ProviderConfig.parse(&id)?;
                self.store
                    .get_provider_config(app_id, &id)
                    .await
                    .map_err(ServiceError::from_store("provider configuration"))?;
                id
            }
            ("grant", Some(id)) => {
                let id = IdKind::Grant.parse(&id)?;
                self.resolve_grant_owner(app_id, &id).await?;
                id
            }
            ("agent", Some(id)) => self.app_agent(app_id, &id).await?.id,
            ("delegation", Some(id)) => self.get_delegation(app_id, &id).await?.id,
            _ => {
                return Err(ServiceError::invalid(
                    "invalid_policy_target",
                    "`target_type` is app (no target_id), provider_config, grant, agent or delegation (with target_id)",
                ));
            }
        };
        let record = PolicyRecord {
            id: IdKind::Policy.generate(),
            app_id: app_id.to_owned(),
            target_type: input.target_type,
            target_id,
            rules: serde_json::to_string(&input.rules).expect("rules serialize"),
            created_at: self.now().as_millis(),
        };
        self.store.insert_policy(&record).await?;
        self.audit(crate::audit::AuditEntry::config(app_id, "policy.created", &record.id, context));
        Ok(policy_view(record))
    }

    pub async fn list_policies(&self, app_id: &str) -> Result<Vec<PolicyView>, ServiceError> {
        Ok(self.store.list_policies(app_id).await?.into_iter().map(policy_view).collect())
    }

    pub async fn delete_policy(&self, app_id: &str, id: &str, context: &CallContext) -> Result<(), ServiceError> {
        let id = IdKind::Policy.parse(id)?;
        self.store.delete_policy(app_id, &id).await.map_err(ServiceError::from_store("policy"))?;
        self.audit(crate::audit::AuditEntry::config(app_id, "policy.deleted", &id, context));
        Ok(())
    }

    /// Checks every policy of the app, the provider configuration and the grant. An allowed access
    /// returns the decision ("allowed by policies pol_…" or "no policy applies") for the audit row
    /// of the access itself, instead of a row per call; a denial gets its own `policy.decision` row.
    pub(crate) async fn check_policies(
        &self,
        scope: &PolicyScope,
        access: Access<'_>,
        context: &CallContext,
    ) -> Result<String, ServiceError> {
        Ok(self.decide(scope, access, context, false).await?.text)
    }

    /// [`Vault::check_policies`], telling also whether a `require_approval` rule holds the call.
    /// `approved`: the call is an approved one being executed, which every approval rule lets
    /// through (all the other rules, rate limits included, are checked as they are now).
    pub(crate) async fn decide(
        &self,
        scope: &PolicyScope,
        access: Access<'_>,
        context: &CallContext,
        approved: bool,
    ) -> Result<Decision, ServiceError> {
        let all = self.cached_policies(&scope.app_id).await?;
        // The app's, the configuration's and the grant's policies, and the calling agent's.
        let agent = context.agent_id();
        let policies: Vec<&tokenvault_store::PolicyRecord> = all
            .iter()
            .filter(|p| scope.is_targeted_by(p) || (p.target_type == "agent" && Some(p.target_id.as_str()) == agent))
            .collect();
        let evaluated: Vec<String> = policies.iter().map(|p| p.id.clone()).collect();
        let mut rate_limits = Vec::new();
        let mut hold = None;
        for policy in &policies {
            let result = match serde_json::from_str::<PolicyRules>(&policy.rules) {
                Ok(rules) => self.evaluate(&policy.id, &rules, scope, access, context).map(|()| rules),
                Err(_) => Err(deny(&policy.id, "unreadable")),
            };
            match result {
                Ok(rules) => {
                    rate_limits.extend(rules.rate_limit.map(|l| (policy.id.as_str(), l)));
                    if let (None, Some(rule), Access::Proxy { method, path }) = (&hold, rules.require_approval, access)
                        && !approved
                        && rule.matches(method, path)
                    {
                        hold = Some(Hold { policy_id: policy.id.clone(), rule });
                    }
                }
                Err(denied) => return Err(self.denied(scope, &access, denied, context)),
            }
        }
        // A held call spends no rate-limit token: its execution will.
        if hold.is_some() {
            return Ok(Decision { text: allowed_by(&evaluated), hold });
        }
        // Rate limits last, so a call another rule refuses spends no token.
        for (policy_id, limit) in rate_limits {
            // An agent's own policy limits the agent across every grant it uses.
            let targeted = policies.iter().find(|p| p.id == policy_id).filter(|p| p.target_type == "agent");
            let bucket = targeted.map_or(scope.grant_id.as_str(), |p| p.target_id.as_str());
            if let Err(wait) = self.take_rate_token(policy_id, bucket, limit).await? {
                let limited = ServiceError::RateLimited {
                    message: format!("rate limit of policy {policy_id} reached"),
                    retry_after_seconds: wait,
                };
                return Err(self.denied(scope, &access, limited, context));
            }
        }
        Ok(Decision { text: allowed_by(&evaluated), hold: None })
    }

    fn denied(
        &self,
        scope: &PolicyScope,
        access: &Access<'_>,
        denied: ServiceError,
        context: &CallContext,
    ) -> ServiceError {
        tracing::info!(grant_id = %scope.grant_id, error = %denied, "access denied by policy");
        self.audit(crate::audit::AuditEntry::denied(scope, access, &denied, context));
        denied
    }

    /// One token of a rate-limit policy's bucket for this grant: shared by every instance on
    /// PostgreSQL, in memory for the single instance of an SQLite vault.
    async fn take_rate_token(
        &self,
        policy_id: &str,
        grant_id: &str,
        limit: RateLimit,
    ) -> Result<Result<(), u64>, ServiceError> {
        let now = self.now().as_millis();
        match self.store.dialect() {
            tokenvault_store::Dialect::Postgres => {
                let (capacity, per_ms) = limit.rate();
                Ok(self.store.take_rate_token(policy_id, grant_id, capacity, per_ms, now).await?)
            }
            tokenvault_store::Dialect::Sqlite => {
                Ok(self.rate_buckets.take((policy_id.to_owned(), grant_id.to_owned()), limit, now))
            }
        }
    }

    fn evaluate(
        &self,
        id: &str,
        rules: &PolicyRules,
        scope: &PolicyScope,
        access: Access<'_>,
        context: &CallContext,
    ) -> Result<(), ServiceError> {
        let now = self.now();
        if rules.token_retrieval == Some(false) && matches!(access, Access::Token) {
            return Err(deny(id, "token_retrieval"));
        }
        // The raw token would let the caller make, unapproved, the calls this rule holds.
        if rules.require_approval.is_some() && matches!(access, Access::Token) {
            return Err(deny(id, "require_approval"));
        }
        if let (Some(methods), Access::Proxy { method, .. }) = (&rules.methods, access)
            && !methods.iter().any(|m| m == method)
        {
            return Err(deny(id, "methods"));
        }
        if let (Some(paths), Access::Proxy { path, .. }) = (&rules.paths, access) {
            let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
            if !paths.iter().any(|p| glob_match(p, &path)) {
                return Err(deny(id, "paths"));
            }
        }
        if let Some(days) = rules.max_grant_age_days
            && now.as_millis() > scope.connected_at + i64::from(days) * 86_400_000
        {
            return Err(deny(id, "max_grant_age_days"));
        }
        if let Some(windows) = &rules.time_windows {
            let datetime = time::OffsetDateTime::from_unix_timestamp(now.as_unix_seconds())
                .map_err(|_| deny(id, "time_windows"))?;
            let minute = u32::from(datetime.hour()) * 60 + u32::from(datetime.minute());
            let day = DAYS[datetime.weekday().number_days_from_monday() as usize];
            let mut inside = false;
            for w in windows {
                let (Some(start), Some(end)) = (parse_hhmm(&w.start), parse_hhmm(&w.end)) else {
                    return Err(deny(id, "time_windows"));
                };
                let day_ok = w.days.as_ref().is_none_or(|d| d.iter().any(|d| d == day));
                if day_ok && minute >= start && minute < end {
                    inside = true;
                }
            }
            if !inside {
                return Err(deny(id, "time_windows"));
            }
        }
        if let Some(cidrs) = &rules.ip_allowlist {
            let Some(ip) = context.client_ip else { return Err(deny(id, "ip_allowlist")) };
            let mut allowed = false;
            for cidr in cidrs {
                match cidr_contains(cidr, ip) {
                    Some(true) => allowed = true,
                    Some(false) => {}
                    None => return Err(deny(id, "ip_allowlist")),
                }
            }
            if !allowed {
                return Err(deny(id, "ip_allowlist"));
            }
        }
        if let Some(types) = &rules.actor_types
            && !context.actor.kind.as_ref().is_some_and(|k| types.contains(k))
        {
            return Err(deny(id, "actor_types"));
        }
        if let Some(ids) = &rules.actor_ids
            && !context.actor.id.as_ref().is_some_and(|i| ids.contains(i))
        {
            return Err(deny(id, "actor_ids"));
        }
        Ok(())
    }
}

fn policy_view(record: PolicyRecord) -> PolicyView {
    PolicyView {
        target_id: (record.target_type != "app").then_some(record.target_id),
        id: record.id,
        target_type: record.target_type,
        rules: serde_json::from_str(&record.rules).unwrap_or(serde_json::Value::Null),
        created_at: Timestamp::from_millis(record.created_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("/v2/users/*", "/v2/users/me"));
        assert!(!glob_match("/v2/users/*", "/v2/users/me/meetings"));
        assert!(glob_match("/v2/**", "/v2/users/me/meetings"));
        assert!(!glob_match("/v2/users/*", "/v3/users/me"));
        assert!(glob_match("/api/v2/echo/*", "/api/v2/echo/x"));
    }

    #[test]
    fn cidrs() {
        assert_eq!(cidr_contains("10.0.0.0/8", "10.1.2.3".parse().unwrap()), Some(true));
        assert_eq!(cidr_contains("10.0.0.0/8", "11.1.2.3".parse().unwrap()), Some(false));
        assert_eq!(cidr_contains("127.0.0.1/32", "::ffff:127.0.0.1".parse().unwrap()), Some(true));
        assert_eq!(cidr_contains("::1/128", "::1".parse().unwrap()), Some(true));
        assert_eq!(cidr_contains("nonsense", "::1".parse().unwrap()), None);
    }

    #[test]
    fn rate_bucket_refills_over_time() {
        let buckets = RateBuckets::default();
        let limit = RateLimit { requests: 2, per_seconds: 10 };
        let key = || ("p".to_owned(), "g".to_owned());
        assert!(buckets.take(key(), limit, 0).is_ok());
        assert!(buckets.take(key(), limit, 0).is_ok());
        assert_eq!(buckets.take(key(), limit, 0), Err(5));
        assert!(buckets.take(key(), limit, 5_000).is_ok());
    }
}
