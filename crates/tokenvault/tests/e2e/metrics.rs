//! Issue 10: `GET /metrics` is Prometheus text whose counters move as calls are made, with
//! bounded labels and no secret or id in it; optionally behind a bearer token.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::support::ADMIN_TOKEN;

connect_tests!(metrics_are_prometheus_text_and_count_what_happens);

/// Parses the text exposition format strictly enough to catch a malformed line: every line is a
/// comment or `name{label="value",...} number`; the text ends with `# EOF`.
fn parse(text: &str) -> HashMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') {
            assert!(line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line == "# EOF", "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{line}");
            for pair in series[name_end + 1..series.len() - 1].split("\",") {
                let (key, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
                assert!(!value.contains('\n'), "{line}");
            }
        }
        samples.insert(series.to_owned(), value);
    }
    samples
}

async fn scrape(env: &ConnectEnv) -> (String, HashMap<String, f64>) {
    let response = env.vault.http.get(env.vault.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.unwrap();
    let samples = parse(&text);
    (text, samples)
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

async fn metrics_are_prometheus_text_and_count_what_happens(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (_, before) = scrape(&env).await;
    let token_series = r#"tokenvault_token_fetches_total{provider="zoom",outcome="ok"}"#;
    let mut secrets = vec![env.key.clone(), ADMIN_TOKEN.to_owned(), grant_id.clone()];
    for _ in 0..2 {
        let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
        assert_eq!(status, StatusCode::OK);
        secrets.push(body["access_token"].as_str().unwrap().to_owned());
    }
    env.vault.clock.advance(Duration::from_secs(3 * 3600));
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::OK);
    secrets.push(body["access_token"].as_str().unwrap().to_owned());
    let (status, _) = env.api(Method::GET, &format!("/v1/proxy/{grant_id}/v2/users/me"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (text, after) = scrape(&env).await;
    assert_eq!(value(&after, token_series) - value(&before, token_series), 3.0, "{text}");
    let refreshed = r#"tokenvault_refreshes_total{provider="zoom",outcome="refreshed"}"#;
    assert_eq!(value(&after, refreshed) - value(&before, refreshed), 1.0, "{text}");
    assert!(value(&after, r#"tokenvault_refresh_duration_seconds_count{provider="zoom"}"#) >= 1.0, "{text}");
    assert_eq!(value(&after, r#"tokenvault_proxy_calls_total{provider="zoom",upstream_status="200"}"#), 1.0, "{text}");
    assert_eq!(value(&after, r#"tokenvault_proxy_added_latency_seconds_count{provider="zoom"}"#), 1.0, "{text}");
    assert_eq!(value(&after, r#"tokenvault_grants{status="active"}"#), 1.0, "{text}");
    let route = r#"tokenvault_http_requests_total{route="/v1/grants/{id}/token",method="POST",status="200"}"#;
    assert_eq!(value(&after, route), 3.0, "route templates, never ids: {text}");
    assert!(after.keys().any(|k| k.starts_with("tokenvault_db_connections{")), "{text}");
    assert!(after.contains_key("tokenvault_audit_queue_depth"), "{text}");
    assert!(after.contains_key("tokenvault_webhook_outbox_depth"), "{text}");
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret or id is in the metrics");
    }
}

#[tokio::test]
async fn a_metrics_token_protects_the_endpoint() {
    let token = "metrics-token-0123456789";
    let Some(env) =
        ConnectEnv::start_adjusted(tokenvault_testkit::Backend::Sqlite, None, |s| s.metrics_token = Some(token.into()))
            .await
    else {
        return;
    };
    let url = env.vault.url("/metrics");
    let refused = env.vault.http.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(crate::support::assert_error_shape(StatusCode::UNAUTHORIZED, &body), "invalid_metrics_token");
    let wrong = env.vault.http.get(&url).bearer_auth("metrics-token-9999999999").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let allowed = env.vault.http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert!(!allowed.text().await.unwrap().contains(token));
}
