//! The audit log: what its rows carry (actor, request id, end user, provider, policy decisions),
//! every filter of `GET /v1/audit`, cursor pagination, the JSON-lines export, retention, and no
//! row lost on a clean shutdown.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::support::{ADMIN_TOKEN, TestVault, assert_error_shape, test_settings};

connect_tests!(
    configuration_changes_carry_actor_and_request_id,
    policy_decisions_are_recorded_with_end_user_and_provider,
    every_filter_selects_exactly_the_matching_rows,
    cursor_pagination_and_export_return_every_row_once,
    a_clean_shutdown_loses_no_audit_row,
    disconnects_are_attributed_to_the_caller_whatever_the_outcome,
);

/// Retention needs its own setting, so these build the vault themselves.
mod retention {
    use tokenvault_testkit::Backend;

    #[tokio::test]
    async fn sqlite() {
        if let Some(vault) = super::vault_with_retention_days(Backend::Sqlite, 30).await {
            super::rows_past_the_retention_period_are_purged(vault).await
        }
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(vault) = super::vault_with_retention_days(Backend::Postgres, 30).await {
            super::rows_past_the_retention_period_are_purged(vault).await
        }
    }
}

const ACTOR: [(&str, &str); 2] = [("x-actor-type", "service"), ("x-actor-id", "deploy-bot")];

/// A call with the app key (or `bearer`), the declared actor and a chosen request id.
async fn call_as(
    env: &ConnectEnv,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
    request_id: &str,
) -> (StatusCode, Value) {
    let mut request = env
        .vault
        .http
        .request(method, env.vault.url(path))
        .bearer_auth(bearer.unwrap_or(&env.key))
        .header("x-request-id", request_id);
    for (name, value) in ACTOR {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The app's audit rows matching `query` (one page of up to 1000).
pub async fn audit_rows(env: &ConnectEnv, query: &str) -> Vec<Value> {
    let (status, page) = env.api(Method::GET, &format!("/v1/audit?limit=1000&{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

async fn proxy_as(env: &ConnectEnv, method: Method, grant_id: &str, path: &str) -> StatusCode {
    let mut request =
        env.vault.http.request(method, env.vault.url(&format!("/v1/proxy/{grant_id}{path}"))).bearer_auth(&env.key);
    for (name, value) in ACTOR {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    // Read to the end: a body dropped half-way is recorded as `client_disconnected`.
    response.bytes().await.unwrap();
    status
}

async fn configuration_changes_carry_actor_and_request_id(env: ConnectEnv) {
    let config = env.configure_zoom().await;
    let config_id = config["id"].as_str().unwrap();
    let evil = env.fakes.urls().evil.clone();
    let zoom = json!({ "provider": "zoom", "client_id": "zoom-client", "client_secret": "zoom-secret-1" });
    let (status, body) =
        call_as(&env, Method::PUT, &format!("/v1/provider-configs/{config_id}"), None, Some(zoom), "req-pc-update")
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, policy) = call_as(
        &env,
        Method::POST,
        "/v1/policies",
        None,
        Some(json!({ "target_type": "app", "rules": {} })),
        "req-pol-create",
    )
    .await;
    let policy_id = policy["id"].as_str().unwrap();
    let (status, _) =
        call_as(&env, Method::DELETE, &format!("/v1/policies/{policy_id}"), None, None, "req-pol-delete").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let secret = json!({ "name": "partner", "style": "bearer", "secret": "ms-audit-1", "base_urls": [evil] });
    let (_, managed) =
        call_as(&env, Method::POST, "/v1/managed-secrets", None, Some(secret.clone()), "req-ms-create").await;
    let managed_id = managed["id"].as_str().unwrap();
    let path = format!("/v1/managed-secrets/{managed_id}");
    let (status, _) = call_as(&env, Method::PUT, &path, None, Some(secret), "req-ms-replace").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call_as(&env, Method::DELETE, &path, None, None, "req-ms-delete").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, endpoint) = call_as(
        &env,
        Method::POST,
        "/v1/webhook-endpoints",
        None,
        Some(json!({ "url": "https://hooks.example.com/vault" })),
        "req-wh-create",
    )
    .await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let (status, _) =
        call_as(&env, Method::DELETE, &format!("/v1/webhook-endpoints/{endpoint_id}"), None, None, "req-wh-delete")
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) =
        call_as(&env, Method::PATCH, "/v1/app", None, Some(json!({ "name": "acme renamed" })), "req-app-update").await;
    assert_eq!(status, StatusCode::OK);
    let app_id = env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
    let (status, key) = call_as(
        &env,
        Method::POST,
        &format!("/admin/v1/apps/{app_id}/api-keys"),
        Some(ADMIN_TOKEN),
        Some(json!({ "name": "second", "scopes": ["*"] })),
        "req-key-create",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key_id = key["id"].as_str().unwrap();
    let (status, _) =
        call_as(&env, Method::DELETE, &format!("/v1/api-keys/{key_id}"), None, None, "req-key-revoke").await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let rows = audit_rows(&env, "").await;
    for (action, request_id, object) in [
        ("provider_config.updated", "req-pc-update", config_id),
        ("policy.created", "req-pol-create", policy_id),
        ("policy.deleted", "req-pol-delete", policy_id),
        ("managed_secret.created", "req-ms-create", managed_id),
        ("managed_secret.replaced", "req-ms-replace", managed_id),
        ("managed_secret.deleted", "req-ms-delete", managed_id),
        ("webhook_endpoint.created", "req-wh-create", endpoint_id),
        ("webhook_endpoint.deleted", "req-wh-delete", endpoint_id),
        ("app.updated", "req-app-update", app_id.as_str()),
        ("api_key.created", "req-key-create", key_id),
        ("api_key.revoked", "req-key-revoke", key_id),
    ] {
        let row = rows
            .iter()
            .find(|r| r["action"] == action && r["request_id"] == request_id)
            .unwrap_or_else(|| panic!("no {action} row with request id {request_id} in {rows:?}"));
        assert_eq!(row["actor"]["type"], "service", "{row}");
        assert_eq!(row["actor"]["id"], "deploy-bot", "{row}");
        assert_eq!(row["outcome"], "success", "{row}");
        assert_eq!(row["detail"], object, "the row names what changed: {row}");
    }
    // A change made without declaring an actor still has its request id.
    let created = rows.iter().find(|r| r["action"] == "provider_config.created").unwrap();
    assert!(created["request_id"].as_str().is_some_and(|r| !r.is_empty()), "{created}");
    assert!(created["actor"].is_null(), "{created}");
}

async fn policy_decisions_are_recorded_with_end_user_and_provider(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-9", "zoom").await;
    let token_path = format!("/v1/grants/{grant_id}/token");
    let (status, _) = call_as(&env, Method::POST, &token_path, None, None, "req-token-1").await;
    assert_eq!(status, StatusCode::OK);
    let (_, policy) = env
        .api(
            Method::POST,
            "/v1/policies",
            Some(json!({ "target_type": "grant", "target_id": grant_id, "rules": { "methods": ["GET"] } })),
        )
        .await;
    let policy_id = policy["id"].as_str().unwrap();
    let (status, _) = call_as(&env, Method::POST, &token_path, None, None, "req-token-2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(proxy_as(&env, Method::GET, &grant_id, "/v2/echo/x").await, StatusCode::OK);
    assert_eq!(proxy_as(&env, Method::DELETE, &grant_id, "/v2/echo/x").await, StatusCode::FORBIDDEN);

    // Allowed decisions are on the access's own row, not a row of their own.
    let retrievals = audit_rows(&env, "action=token.retrieved").await;
    let by_request = |id: &str| retrievals.iter().find(|r| r["request_id"] == id).unwrap().clone();
    assert_eq!(by_request("req-token-1")["detail"], "no policy applies");
    assert_eq!(by_request("req-token-2")["detail"], format!("allowed by policies {policy_id}"));
    let proxied = audit_rows(&env, "action=proxy.request").await;
    assert_eq!(proxied.len(), 2, "one row per proxied call: {proxied:?}");
    assert_eq!(proxied[0]["detail"], format!("allowed by policies {policy_id}"));
    assert_eq!(proxied[0]["upstream_status"], 200);
    assert_eq!(proxied[1]["outcome"], "denied");
    assert!(proxied[1]["host"].is_null() && proxied[1]["upstream_status"].is_null(), "never reached the provider");
    let decisions = audit_rows(&env, "action=policy.decision").await;
    assert_eq!(decisions.len(), 1, "only the denial has a row: {decisions:?}");
    let denied = &decisions[0];
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["grant_id"], grant_id.as_str());
    assert_eq!(denied["end_user_id"], "user-9");
    assert_eq!(denied["provider"], "zoom");
    assert_eq!(denied["method"], "DELETE");
    assert_eq!(denied["actor"]["id"], "deploy-bot");
    assert!(denied["request_id"].is_string());
    assert!(
        denied["detail"].as_str().unwrap().contains(policy_id)
            && denied["detail"].as_str().unwrap().contains("methods")
    );

    // A denied token retrieval: the denial row and the retrieval row, both attributed.
    env.api(Method::POST, "/v1/policies", Some(json!({ "target_type": "app", "rules": { "token_retrieval": false } })))
        .await;
    let (status, _) = call_as(&env, Method::POST, &token_path, None, None, "req-token-3").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let rows = audit_rows(&env, "").await;
    for action in ["policy.decision", "token.retrieved"] {
        let row = rows.iter().find(|r| r["action"] == action && r["request_id"] == "req-token-3").unwrap();
        assert_eq!(row["outcome"], "denied", "{row}");
        assert_eq!(row["end_user_id"], "user-9", "{row}");
        assert_eq!(row["provider"], "zoom", "{row}");
        assert!(row["detail"].as_str().unwrap().contains("token_retrieval"), "{row}");
    }
}

/// The ids of `rows`, in order.
fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

fn at_millis(row: &Value) -> i128 {
    let at = time::OffsetDateTime::parse(row["at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
        .unwrap();
    at.unix_timestamp_nanos() / 1_000_000
}

fn rfc3339(millis: i128) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Retrieves a grant's token as the given actor (if any).
async fn retrieve(env: &ConnectEnv, grant_id: &str, actor_id: Option<&str>) -> StatusCode {
    let mut request = env.vault.http.post(env.vault.url(&format!("/v1/grants/{grant_id}/token"))).bearer_auth(&env.key);
    if let Some(actor_id) = actor_id {
        request = request.header("x-actor-type", "ai_agent").header("x-actor-id", actor_id);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    // Read to the end: a body dropped half-way is recorded as `client_disconnected`.
    response.bytes().await.unwrap();
    status
}

/// A log with rows of three providers, two end users, two actors, several actions and outcomes,
/// written at two distinct times ten minutes apart.
async fn varied_log(env: &ConnectEnv) -> (String, String, String) {
    env.configure_zoom().await;
    env.configure_aircall().await;
    env.configure_dialpad("production", None).await;
    let zoom_a = env.connect_ok("user-a", "zoom").await;
    let dialpad_b = env.connect_ok("user-b", "dialpad-production").await;
    let aircall_a = env.connect_ok("user-a", "aircall").await;
    assert_eq!(retrieve(env, &zoom_a, Some("bot-1")).await, StatusCode::OK);
    env.vault.clock.advance(Duration::from_secs(600));
    assert_eq!(retrieve(env, &dialpad_b, Some("bot-2")).await, StatusCode::OK);
    assert_eq!(retrieve(env, &aircall_a, None).await, StatusCode::OK);
    env.api(
        Method::POST,
        "/v1/policies",
        Some(json!({ "target_type": "grant", "target_id": aircall_a, "rules": { "token_retrieval": false } })),
    )
    .await;
    assert_eq!(retrieve(env, &aircall_a, Some("bot-1")).await, StatusCode::FORBIDDEN);
    (zoom_a, dialpad_b, aircall_a)
}

async fn every_filter_selects_exactly_the_matching_rows(env: ConnectEnv) {
    let (zoom_a, _, aircall_a) = varied_log(&env).await;
    let all = audit_rows(&env, "").await;
    let first_at = all.iter().map(at_millis).min().unwrap();
    let last_at = all.iter().map(at_millis).max().unwrap();
    assert!(last_at - first_at >= 600_000, "the log spans the clock move");
    let later = rfc3339(first_at + 300_000);
    let earlier = rfc3339(first_at + 300_000 - 1);
    type Predicate = Box<dyn Fn(&Value) -> bool>;
    let cases: Vec<(String, Predicate)> = vec![
        (format!("grant_id={zoom_a}"), Box::new(move |r: &Value| r["grant_id"] == zoom_a.as_str())),
        ("end_user_id=user-a".into(), Box::new(|r: &Value| r["end_user_id"] == "user-a")),
        ("provider=aircall".into(), Box::new(|r: &Value| r["provider"] == "aircall")),
        ("actor_id=bot-1".into(), Box::new(|r: &Value| r["actor"]["id"] == "bot-1")),
        ("action=token.retrieved".into(), Box::new(|r: &Value| r["action"] == "token.retrieved")),
        ("outcome=denied".into(), Box::new(|r: &Value| r["outcome"] == "denied")),
        (format!("from={later}"), Box::new(move |r: &Value| at_millis(r) >= first_at + 300_000)),
        (format!("to={earlier}"), Box::new(move |r: &Value| at_millis(r) < first_at + 300_000)),
        (
            format!("from={}&to={}", rfc3339(first_at), rfc3339(first_at)),
            Box::new(move |r: &Value| at_millis(r) == first_at),
        ),
        (format!("provider=zoom&actor_id=bot-2&grant_id={aircall_a}"), Box::new(|_: &Value| false)),
        (
            "provider=aircall&outcome=denied&action=policy.decision".into(),
            Box::new(|r: &Value| {
                r["provider"] == "aircall" && r["outcome"] == "denied" && r["action"] == "policy.decision"
            }),
        ),
    ];
    for (query, matches) in cases {
        let expected: Vec<Value> = all.iter().filter(|r| matches(r)).cloned().collect();
        let query = query.replace('+', "%2B");
        let got = audit_rows(&env, &query).await;
        assert_eq!(ids(&got), ids(&expected), "{query}");
        if !query.contains(&format!("grant_id={aircall_a}")) {
            assert!(!got.is_empty() && got.len() < all.len(), "{query} must select some rows, not all");
        }
    }
    for bad in ["from=yesterday", "to=2026-13-01T00:00:00Z", "after=not-an-id", "colour=red"] {
        let (status, body) = env.api(Method::GET, &format!("/v1/audit?{bad}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_error_shape(status, &body);
    }
}

async fn cursor_pagination_and_export_return_every_row_once(env: ConnectEnv) {
    varied_log(&env).await;
    let all = audit_rows(&env, "").await;
    assert!(all.len() > 5, "{}", all.len());
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = after.as_ref().map(|a| format!("&after={a}")).unwrap_or_default();
        let (status, page) = env.api(Method::GET, &format!("/v1/audit?limit=2{query}"), None).await;
        assert_eq!(status, StatusCode::OK);
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        paged.extend(data.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => break,
        }
    }
    assert_eq!(ids(&paged), ids(&all), "every row once, in order");
    // The cursor combines with filters.
    let zoom = audit_rows(&env, "provider=zoom").await;
    let (_, page) =
        env.api(Method::GET, &format!("/v1/audit?provider=zoom&after={}", zoom[0]["id"].as_str().unwrap()), None).await;
    assert_eq!(ids(page["data"].as_array().unwrap()), ids(&zoom[1..]));

    // The export is the filtered log as JSON lines, past its internal page size of 1000.
    let app_id = env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
    let now = env.vault.clock_now_seconds() * 1000;
    let bulk: Vec<tokenvault_store::AuditRecord> = (0..1_100)
        .map(|_| tokenvault_store::AuditRecord {
            id: tokenvault_service::IdKind::AuditEvent.generate(),
            app_id: app_id.clone(),
            at: now,
            action: "bulk.test".into(),
            outcome: "success".into(),
            ..Default::default()
        })
        .collect();
    env.vault.vault.store().append_audit(&bulk).await.unwrap();
    let export = |query: &'static str| {
        let request = env.vault.http.get(env.vault.url(&format!("/v1/audit/export{query}"))).bearer_auth(&env.key);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["content-type"], "application/x-ndjson");
            let text = response.text().await.unwrap();
            text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect::<Vec<_>>()
        }
    };
    let exported = export("").await;
    assert_eq!(exported.len(), all.len() + 1_100);
    let mut unique = ids(&exported);
    unique.dedup();
    assert_eq!(unique.len(), exported.len(), "no row twice");
    assert_eq!(ids(&exported[..all.len()]), ids(&all));
    assert_eq!(ids(&export("?provider=zoom").await), ids(&zoom), "filters apply to the export");
    assert_eq!(export("?action=bulk.test").await.len(), 1_100);
}

async fn a_clean_shutdown_loses_no_audit_row(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let ConnectEnv { vault, fakes, key } = env;
    let vault = Arc::new(vault);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let vault = vault.clone();
        let (key, grant_id) = (key.clone(), grant_id.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                let response = vault
                    .http
                    .post(vault.url(&format!("/v1/grants/{grant_id}/token")))
                    .bearer_auth(&key)
                    .header("x-request-id", format!("burst-{worker}-{i}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Straight to a graceful stop: nothing has read (and so flushed) the log.
    let vault = Arc::try_unwrap(vault).ok().expect("no other handle").restart().await;
    let env = ConnectEnv { vault, fakes, key };
    let rows = audit_rows(&env, "action=token.retrieved").await;
    let seen: std::collections::HashSet<&str> = rows.iter().filter_map(|r| r["request_id"].as_str()).collect();
    let missing: Vec<String> = (0..8)
        .flat_map(|w| (0..40).map(move |i| format!("burst-{w}-{i}")))
        .filter(|id| !seen.contains(id.as_str()))
        .collect();
    assert!(missing.is_empty(), "{} of 320 rows lost on shutdown, e.g. {:?}", missing.len(), missing.first());
    assert_eq!(rows.len(), 320, "one row per retrieval");
}

pub async fn vault_with_retention_days(backend: tokenvault_testkit::Backend, days: u64) -> Option<TestVault> {
    let db = Arc::new(tokenvault_testkit::TestDatabase::create(backend).await?);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut settings = test_settings(&db, dir.path());
    settings.audit_retention = Duration::from_secs(days * 86_400);
    Some(TestVault::start_with(settings, db, dir).await)
}

async fn rows_past_the_retention_period_are_purged(vault: TestVault) {
    let (_, key) = vault.new_app("retained").await;
    let create_policy = |name: &'static str| {
        let request = vault
            .http
            .post(vault.url("/v1/policies"))
            .bearer_auth(&key)
            .header("x-request-id", name)
            .json(&json!({ "target_type": "app", "rules": {} }));
        async move { assert_eq!(request.send().await.unwrap().status(), StatusCode::CREATED) }
    };
    create_policy("old-1").await;
    create_policy("old-2").await;
    vault.clock.advance(Duration::from_secs(20 * 86_400));
    create_policy("recent-1").await;
    vault.vault.flush_audit().await;
    assert_eq!(vault.vault.purge_expired_audit().await.unwrap(), 0, "nothing is 30 days old yet");
    // 35 days after the first rows, 15 after the recent one.
    vault.clock.advance(Duration::from_secs(15 * 86_400));
    let purged = vault.vault.purge_expired_audit().await.unwrap();
    let (_, page) = vault.call(Method::GET, "/v1/audit?action=policy.created", Some(&key), None).await;
    let kept: Vec<&str> = page["data"].as_array().unwrap().iter().map(|r| r["request_id"].as_str().unwrap()).collect();
    assert_eq!(kept, ["recent-1"]);
    // The two old policy rows, and the old key-minting and app rows of the set-up.
    assert!(purged >= 2, "{purged}");
    let (_, page) = vault.call(Method::GET, "/v1/audit?limit=1000", Some(&key), None).await;
    let cutoff = vault.clock_now_seconds() as i128 * 1000 - 30 * 86_400_000;
    assert!(page["data"].as_array().unwrap().iter().all(|r| at_millis(r) >= cutoff), "{page}");
}

async fn disconnects_are_attributed_to_the_caller_whatever_the_outcome(env: ConnectEnv) {
    use tokenvault_fakes::{Endpoint, Fault, Provider};
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-4", "zoom").await;
    let unavailable =
        Fault::Status { status: 503, body: r#"{"error":"temporarily_unavailable"}"#.into(), retry_after: None };
    env.fakes.control().inject(Provider::Zoom, Endpoint::Revoke, unavailable, 1);
    let path = format!("/v1/grants/{grant_id}");
    let (status, _) = call_as(&env, Method::DELETE, &path, None, None, "req-disconnect-1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = call_as(&env, Method::DELETE, &path, None, None, "req-disconnect-2").await;
    assert_eq!(status, StatusCode::OK);

    let rows = audit_rows(&env, "action=grant.revoked").await;
    let outcomes: Vec<(&str, &str)> =
        rows.iter().map(|r| (r["request_id"].as_str().unwrap(), r["outcome"].as_str().unwrap())).collect();
    assert_eq!(outcomes, [("req-disconnect-1", "failure"), ("req-disconnect-2", "success")]);
    for row in &rows {
        assert_eq!(row["actor"]["id"], "deploy-bot", "{row}");
        assert_eq!((row["grant_id"].as_str(), row["end_user_id"].as_str()), (Some(grant_id.as_str()), Some("user-4")));
        assert_eq!(row["provider"], "zoom");
    }
}
