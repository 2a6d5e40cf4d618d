//! Aggregates for the portal's overview, across every app: proxied calls per provider and hour,
//! audit events counted by action and detail, grants needing re-authorization per app. Plain
//! `COUNT` and integer division only, so one query serves SQLite and PostgreSQL (`COUNT` is a
//! 64-bit integer on both; `SUM` would be `NUMERIC` on PostgreSQL).

use sqlx::Row;

use crate::{Millis, Store, StoreError};

const HOUR_MS: i64 = 3_600_000;

/// Proxied calls of one provider within one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHourCount {
    /// `None` when the call failed before a grant (and so a provider) was known.
    pub provider: Option<String>,
    /// The hour, as hours since the Unix epoch (`at / 3_600_000`).
    pub hour: i64,
    pub calls: i64,
    /// Calls whose outcome is not `success` or whose upstream answered 400 or more.
    pub errors: i64,
}

/// Audit events of one action with one detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActionCount {
    pub action: String,
    pub detail: Option<String>,
    pub count: i64,
}

/// One app's grants of one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppGrantCount {
    pub app_id: String,
    pub app_name: String,
    pub count: i64,
}

impl Store {
    /// Audit rows of `action` (the proxy's) with `from <= at < to`, counted per provider and hour.
    pub async fn count_calls_per_hour(
        &self,
        action: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<ProxyHourCount>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT provider, at / {HOUR_MS} AS hour, COUNT(*) AS calls, \
             COUNT(CASE WHEN outcome <> 'success' OR upstream_status >= 400 THEN 1 END) AS errors \
             FROM audit_events WHERE action = $1 AND at >= $2 AND at < $3 \
             GROUP BY provider, at / {HOUR_MS} ORDER BY provider, hour"
        )))
        .bind(action)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ProxyHourCount {
                    provider: r.try_get("provider")?,
                    hour: r.try_get("hour")?,
                    calls: r.try_get("calls")?,
                    errors: r.try_get("errors")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Audit rows of any of `actions` with `from <= at < to`, counted per action and detail.
    pub async fn count_audit_actions(
        &self,
        actions: &[&str],
        from: Millis,
        to: Millis,
    ) -> Result<Vec<AuditActionCount>, StoreError> {
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        // Only placeholders are formatted into the statement; the names are bound.
        let placeholders: Vec<String> = (0..actions.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT action, detail, COUNT(*) AS n FROM audit_events \
             WHERE at >= $1 AND at < $2 AND action IN ({}) GROUP BY action, detail ORDER BY action, detail",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(from).bind(to);
        for action in actions {
            query = query.bind(*action);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditActionCount {
                    action: r.try_get("action")?,
                    detail: r.try_get("detail")?,
                    count: r.try_get("n")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Per app (with its name), how many of its grants have `status`; apps without any are left out.
    pub async fn count_grants_of_status_per_app(&self, status: &str) -> Result<Vec<AppGrantCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.app_id AS app_id, a.name AS app_name, COUNT(*) AS n FROM grants g \
             JOIN apps a ON a.id = g.app_id WHERE g.status = $1 GROUP BY g.app_id, a.name ORDER BY a.name, g.app_id",
        )
        .bind(status)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AppGrantCount {
                    app_id: r.try_get("app_id")?,
                    app_name: r.try_get("app_name")?,
                    count: r.try_get("n")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use tokenvault_testkit::{Backend, TestDatabase};

    use super::*;
    use crate::{AppRecord, AuditRecord};

    async fn with_store(backend: Backend, case: impl AsyncFnOnce(Store)) {
        let Some(db) = TestDatabase::create(backend).await else { return };
        let store = Store::connect(&db.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        case(store.clone()).await;
        store.close().await;
    }

    fn row(id: &str, app_id: &str, at: Millis, action: &str, provider: Option<&str>) -> AuditRecord {
        AuditRecord {
            id: id.into(),
            app_id: app_id.into(),
            at,
            action: action.into(),
            outcome: "success".into(),
            provider: provider.map(str::to_owned),
            ..AuditRecord::default()
        }
    }

    async fn counts_work(store: Store) {
        let base = 480_000 * HOUR_MS; // an hour boundary
        let mut failed = row("aud_3", "app_a", base + 2, "proxy.request", Some("zoom"));
        failed.outcome = "failure".into();
        let mut upstream_error = row("aud_4", "app_a", base + HOUR_MS + 5, "proxy.request", Some("zoom"));
        upstream_error.upstream_status = Some(502);
        let mut ok_status = row("aud_5", "app_b", base + HOUR_MS + 6, "proxy.request", Some("zoom"));
        ok_status.upstream_status = Some(200);
        let mut reauth = row("aud_8", "app_a", base + 10, "grant.needs_reauth", Some("zoom"));
        reauth.detail = Some("refresh_token_rejected".into());
        let rows = vec![
            row("aud_1", "app_a", base, "proxy.request", Some("zoom")),
            row("aud_2", "app_a", base + 1, "proxy.request", Some("dialpad")),
            failed,
            upstream_error,
            ok_status,
            row("aud_6", "app_a", base - 1, "proxy.request", Some("zoom")),
            row("aud_7", "app_a", base + 3, "proxy.request", None),
            reauth,
            row("aud_9", "app_b", base + 11, "grant.refreshed", Some("zoom")),
            row("aud_10", "app_b", base + 12, "grant.refreshed", Some("zoom")),
            row("aud_11", "app_b", base + 13, "token.retrieved", Some("zoom")),
        ];
        store.append_audit(&rows).await.unwrap();
        let to = base + 24 * HOUR_MS;
        let calls = store.count_calls_per_hour("proxy.request", base, to).await.unwrap();
        let hour = base / HOUR_MS;
        let expect = |provider: Option<&str>, hour: i64, calls: i64, errors: i64| ProxyHourCount {
            provider: provider.map(str::to_owned),
            hour,
            calls,
            errors,
        };
        let mut calls = calls;
        calls.sort_by(|a, b| (&a.provider, a.hour).cmp(&(&b.provider, b.hour)));
        assert_eq!(
            calls,
            vec![
                expect(None, hour, 1, 0),
                expect(Some("dialpad"), hour, 1, 0),
                expect(Some("zoom"), hour, 2, 1),
                expect(Some("zoom"), hour + 1, 2, 1),
            ]
        );
        let mut actions =
            store.count_audit_actions(&["grant.refreshed", "grant.needs_reauth"], base, to).await.unwrap();
        actions.sort_by(|a, b| a.action.cmp(&b.action));
        assert_eq!(
            actions,
            vec![
                AuditActionCount {
                    action: "grant.needs_reauth".into(),
                    detail: Some("refresh_token_rejected".into()),
                    count: 1
                },
                AuditActionCount { action: "grant.refreshed".into(), detail: None, count: 2 },
            ]
        );
        assert!(store.count_audit_actions(&[], base, to).await.unwrap().is_empty());
        // No grants yet: nothing per app.
        let app = AppRecord {
            id: "app_a".into(),
            name: "A".into(),
            created_at: 1,
            return_origins: vec![],
            install_return_url: None,
            branding: Default::default(),
        };
        store.insert_app(&app).await.unwrap();
        assert!(store.count_grants_of_status_per_app("needs_reauth").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn counts_on_sqlite() {
        with_store(Backend::Sqlite, counts_work).await;
    }

    #[tokio::test]
    async fn counts_on_postgres() {
        with_store(Backend::Postgres, counts_work).await;
    }
}
