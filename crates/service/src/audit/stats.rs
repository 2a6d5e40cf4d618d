//! The portal overview's numbers, across every app: proxied calls and errors per provider and
//! hour over the last 24 hours, refresh outcomes over the same window (from the audit log),
//! grants by status, and the grants that need their end user to re-authorize, per app.

use serde::Serialize;

use crate::{ServiceError, Timestamp, Vault};

/// The audit action of a proxied call.
const PROXY_ACTION: &str = "proxy.request";
/// The audit action of a successful refresh.
const REFRESHED_ACTION: &str = "grant.refreshed";
/// The audit action of a grant that needs re-authorization (a refresh refused, a token the
/// provider rejected, a newer authorization); its detail is the reason.
const NEEDS_REAUTH_ACTION: &str = "grant.needs_reauth";
/// Every grant status, in the order the overview shows them.
pub const GRANT_STATUSES: [&str; 4] = ["active", "needs_reauth", "revoke_failed", "revoked"];
/// Hours in the overview's window.
pub const STATS_HOURS: usize = 24;
const HOUR_MS: i64 = 3_600_000;

/// The overview's numbers (see the module documentation).
#[derive(Debug, Clone, Serialize)]
pub struct PortalStats {
    /// The start of the first hour of the window: the current hour's start, 23 hours back.
    pub since: Timestamp,
    /// When the numbers were taken (the vault's clock).
    pub until: Timestamp,
    /// The start of each hour of the window, oldest first ([`STATS_HOURS`] of them).
    pub hours: Vec<Timestamp>,
    /// Proxied calls per provider (by name; `unknown` when the call failed before a grant was
    /// found), each with one count per hour of `hours`.
    pub traffic: Vec<ProviderTraffic>,
    /// Refresh outcomes in the window: `refreshed` first, then `needs_reauth` per reason.
    pub refreshes: Vec<RefreshCount>,
    /// Grants (now) of each status in [`GRANT_STATUSES`], zeros included.
    pub grants_by_status: Vec<StatusCount>,
    /// Apps with grants needing re-authorization (now), by app name.
    pub needs_reauth: Vec<AppNeedingReauth>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProviderTraffic {
    pub provider: String,
    /// Proxied calls per hour.
    pub calls: Vec<u64>,
    /// Of those, calls that failed or whose upstream answered 400 or more.
    pub errors: Vec<u64>,
}

impl ProviderTraffic {
    pub fn total_calls(&self) -> u64 {
        self.calls.iter().sum()
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RefreshCount {
    /// `refreshed` or `needs_reauth`.
    pub outcome: String,
    /// Why re-authorization is needed (`refresh_token_rejected`, ...).
    pub reason: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatusCount {
    pub status: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AppNeedingReauth {
    pub app_id: String,
    pub app_name: String,
    pub count: u64,
}

impl PortalStats {
    /// Grants needing re-authorization, in every app.
    pub fn needs_reauth_total(&self) -> u64 {
        self.needs_reauth.iter().map(|a| a.count).sum()
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Vault {
    /// The overview's numbers, by the vault's clock (pending audit entries are flushed first).
    pub async fn portal_stats(&self) -> Result<PortalStats, ServiceError> {
        self.flush_audit().await;
        let until = self.now();
        let current_hour = until.as_millis().div_euclid(HOUR_MS);
        let first_hour = current_hour - (STATS_HOURS as i64 - 1);
        let (from, to) = (first_hour * HOUR_MS, (current_hour + 1) * HOUR_MS);

        let mut traffic: Vec<ProviderTraffic> = Vec::new();
        for row in self.store.count_calls_per_hour(PROXY_ACTION, from, to).await? {
            let Ok(slot) = usize::try_from(row.hour - first_hour) else { continue };
            if slot >= STATS_HOURS {
                continue;
            }
            let provider = row.provider.unwrap_or_else(|| "unknown".into());
            let index = match traffic.iter().position(|t| t.provider == provider) {
                Some(index) => index,
                None => {
                    traffic.push(ProviderTraffic {
                        provider,
                        calls: vec![0; STATS_HOURS],
                        errors: vec![0; STATS_HOURS],
                    });
                    traffic.len() - 1
                }
            };
            traffic[index].calls[slot] += count(row.calls);
            traffic[index].errors[slot] += count(row.errors);
        }
        traffic.sort_by(|a, b| a.provider.cmp(&b.provider));

        let mut refreshed = 0;
        let mut reauth: Vec<RefreshCount> = Vec::new();
        for row in self.store.count_audit_actions(&[REFRESHED_ACTION, NEEDS_REAUTH_ACTION], from, to).await? {
            if row.action == REFRESHED_ACTION {
                refreshed += count(row.count);
            } else {
                reauth.push(RefreshCount {
                    outcome: "needs_reauth".into(),
                    reason: row.detail,
                    count: count(row.count),
                });
            }
        }
        reauth.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        let mut refreshes = vec![RefreshCount { outcome: "refreshed".into(), reason: None, count: refreshed }];
        if reauth.is_empty() {
            reauth.push(RefreshCount { outcome: "needs_reauth".into(), reason: None, count: 0 });
        }
        refreshes.extend(reauth);

        let by_status = self.store.count_grants_by_status().await?;
        let grants_by_status = GRANT_STATUSES
            .iter()
            .map(|status| StatusCount {
                status: (*status).to_owned(),
                count: by_status.iter().filter(|(s, _)| s == status).map(|(_, n)| count(*n)).sum(),
            })
            .collect();

        let needs_reauth = self
            .store
            .count_grants_of_status_per_app("needs_reauth")
            .await?
            .into_iter()
            .map(|row| AppNeedingReauth { app_id: row.app_id, app_name: row.app_name, count: count(row.count) })
            .collect();

        Ok(PortalStats {
            since: Timestamp::from_millis(from),
            until,
            hours: (0..STATS_HOURS as i64).map(|i| Timestamp::from_millis(from + i * HOUR_MS)).collect(),
            traffic,
            refreshes,
            grants_by_status,
            needs_reauth,
        })
    }
}
