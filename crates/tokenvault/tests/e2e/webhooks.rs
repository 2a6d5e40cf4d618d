//! Issue 4: provider webhooks (Zoom deauthorization and URL validation, Aircall events) and the
//! app's webhooks (Standard Webhooks signatures, durable retries).

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tokenvault_fakes::{FakeUser, Provider};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::support::assert_error_shape;

const ZOOM_SECRET: &str = "zoom-webhook-secret-token";

connect_tests!(
    quirk_16_zoom_deauthorization_revokes_and_rejects_bad_signatures,
    quirk_17_zoom_url_validation_is_answered,
    quirk_23_aircall_webhook_token_routes_events_and_is_removed_on_disconnect,
    app_webhooks_are_signed_per_standard_webhooks_and_survive_a_receiver_outage,
    webhook_endpoint_inputs_are_validated_and_isolated,
    a_rotated_secret_signs_beside_the_old_one_for_its_grace_and_a_given_up_delivery_is_retried,
);

/// A receiver the test controls: records every request it gets.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

impl Receiver {
    /// Serves on `listener`; returns a handle that stops it when aborted.
    fn serve(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        let received = self.received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let received = received.clone();
                async move {
                    received.lock().unwrap().push((headers, body));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        })
    }

    fn events(&self) -> Vec<(HeaderMap, Value)> {
        self.received.lock().unwrap().iter().map(|(h, b)| (h.clone(), serde_json::from_str(b).unwrap())).collect()
    }
}

/// An independent Standard Webhooks verifier (the spec's algorithm, written from the spec).
fn verify_standard_webhook(secret: &str, headers: &HeaderMap, body: &str) -> bool {
    let id = headers["webhook-id"].to_str().unwrap();
    let timestamp = headers["webhook-timestamp"].to_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|sig| sig.strip_prefix("v1,") == Some(expected.as_str()))
}

async fn zoom_config(env: &ConnectEnv) -> Value {
    env.configure(
        Provider::Zoom,
        json!({ "provider": "zoom", "client_id": "zoom-client", "client_secret": "zoom-secret-1", "webhook_secret": ZOOM_SECRET }),
    )
    .await
}

async fn post_zoom(env: &ConnectEnv, url: &str, body: &[u8], timestamp: i64, signature: &str) -> (StatusCode, Value) {
    let response = env
        .vault
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("x-zm-request-timestamp", timestamp.to_string())
        .header("x-zm-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn quirk_16_zoom_deauthorization_revokes_and_rejects_bad_signatures(env: ConnectEnv) {
    let config = zoom_config(&env).await;
    assert_eq!(config["webhook_secret_set"], true);
    assert!(!config.to_string().contains(ZOOM_SECRET));
    let url = config["webhook_url"].as_str().unwrap().to_owned();
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let zoe = FakeUser::default_for(Provider::Zoom);
    let body =
        serde_json::to_vec(&env.fakes.control().zoom_deauthorization_event(&zoe.id, &zoe.account_id, "zoom-client"))
            .unwrap();
    let now = env.vault.clock_now_seconds();
    let good = env.fakes.control().zoom_sign(ZOOM_SECRET, &now.to_string(), &body);

    // Wrong secret, stale timestamp, one byte changed, no signature: 401 and nothing changes.
    let wrong = env.fakes.control().zoom_sign("another-secret", &now.to_string(), &body);
    let stale = env.fakes.control().zoom_sign(ZOOM_SECRET, &(now - 301).to_string(), &body);
    let mut altered = body.clone();
    let last = altered.len() - 2;
    altered[last] ^= 0x01;
    for (payload, timestamp, signature) in [
        (&body, now, wrong.as_str()),
        (&body, now - 301, stale.as_str()),
        (&altered, now, good.as_str()),
        (&body, now, ""),
    ] {
        let (status, error) = post_zoom(&env, &url, payload, timestamp, signature).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{error}");
        assert_eq!(assert_error_shape(status, &error), "invalid_signature");
        assert_eq!(env.grant(&grant_id).await["status"], "active");
    }

    let (status, _) = post_zoom(&env, &url, &body, now, &good).await;
    assert_eq!(status, StatusCode::OK);
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["status"], "revoked");
    assert_eq!(grant["status_reason"], "provider_deauthorized");
    let (status, _) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::GONE, "tokens erased");
    // Redelivery is idempotent.
    let (status, _) = post_zoom(&env, &url, &body, now, &good).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(env.grant(&grant_id).await["updated_at"], grant["updated_at"]);
}

async fn quirk_17_zoom_url_validation_is_answered(env: ConnectEnv) {
    let config = zoom_config(&env).await;
    let url = config["webhook_url"].as_str().unwrap();
    let body =
        serde_json::to_vec(&tokenvault_fakes::zoom_url_validation_event("qgg8vlvZRS6UYooatFL8Aw", 1_700_000_000_000))
            .unwrap();
    let now = env.vault.clock_now_seconds();
    let signature = env.fakes.control().zoom_sign(ZOOM_SECRET, &now.to_string(), &body);
    let (status, answer) = post_zoom(&env, url, &body, now, &signature).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, tokenvault_fakes::zoom_url_validation_response(ZOOM_SECRET, "qgg8vlvZRS6UYooatFL8Aw"));
    // A configuration without a secret token cannot be validated.
    let (status, _) = post_zoom(
        &env,
        &format!("{}/webhooks/zoom/pcf_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e", env.vault.base),
        &body,
        now,
        &signature,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn quirk_23_aircall_webhook_token_routes_events_and_is_removed_on_disconnect(env: ConnectEnv) {
    let config = env
        .configure(
            Provider::Aircall,
            json!({ "provider": "aircall", "client_id": "aircall-client", "client_secret": "aircall-secret-1",
                    "provider_webhook_events": ["call.created", "call.ended"] }),
        )
        .await;
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let _server = receiver.serve(listener);
    let (status, _) = env
        .api(Method::POST, "/v1/webhook-endpoints", Some(json!({ "url": hook, "events": ["provider.event"] })))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let grant_id = env.connect_ok("user-1", "aircall").await;
    let webhooks = env.fakes.control().aircall_webhooks();
    assert_eq!(webhooks.len(), 1, "one webhook created at Aircall");
    assert_eq!(webhooks[0].url, config["webhook_url"].as_str().unwrap());
    let token = webhooks[0].token.clone();

    let event = env.fakes.control().aircall_webhook_event(&token, "call.created");
    let response = env.vault.http.post(config["webhook_url"].as_str().unwrap()).json(&event).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let unknown = env.fakes.control().aircall_webhook_event("not-a-token", "call.created");
    let response = env.vault.http.post(config["webhook_url"].as_str().unwrap()).json(&unknown).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    env.vault.vault.deliver_due_webhooks(100).await.unwrap();
    let events = receiver.events();
    assert_eq!(events.len(), 1);
    let (_, delivered) = &events[0];
    assert_eq!(delivered["type"], "provider.event");
    assert_eq!(delivered["data"]["grant_id"], grant_id.as_str());
    assert_eq!(delivered["data"]["event"], "call.created");
    assert!(!delivered.to_string().contains(&token), "the webhook token is never forwarded");

    let (status, _) = env.api(Method::DELETE, &format!("/v1/grants/{grant_id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(env.fakes.control().aircall_webhooks().is_empty(), "webhooks deleted before disabling the integration");
}

async fn app_webhooks_are_signed_per_standard_webhooks_and_survive_a_receiver_outage(env: ConnectEnv) {
    env.configure_zoom().await;
    // The receiver is down: its port is reserved and then closed.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let (status, endpoint) = env
        .api(Method::POST, "/v1/webhook-endpoints", Some(json!({ "url": format!("http://{addr}/hook"), "events": ["grant.connected", "grant.needs_reauth", "grant.revoked"] })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let (_, listed) = env.api(Method::GET, "/v1/webhook-endpoints", None).await;
    assert!(!listed.to_string().contains(&secret), "the secret is shown once");

    let first = env.connect_ok("user-1", "zoom").await;
    let second = env.connect_ok("user-2", "zoom").await; // supersedes the first: grant.needs_reauth
    let (status, _) = env.api(Method::DELETE, &format!("/v1/grants/{second}"), None).await;
    assert_eq!(status, StatusCode::OK);
    // While it is down, attempts fail and are rescheduled, never lost.
    for _ in 0..3 {
        let report = env.vault.vault.deliver_due_webhooks(100).await.unwrap();
        assert_eq!(report.delivered, 0);
        env.vault.clock.advance(std::time::Duration::from_secs(60));
    }
    let (_, log) = env.api(Method::GET, "/v1/webhook-deliveries", None).await;
    let rows = log["data"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{log}");
    assert!(
        rows.iter()
            .all(|d| d["state"] == "pending" && d["attempts"].as_i64().unwrap() >= 1 && d["last_error"].is_string())
    );

    // It comes back.
    let receiver = Receiver::default();
    let _server = receiver.serve(tokio::net::TcpListener::bind(addr).await.unwrap());
    env.vault.clock.advance(std::time::Duration::from_secs(3600));
    let report = env.vault.vault.deliver_due_webhooks(100).await.unwrap();
    assert_eq!(report.delivered, 4, "{report:?}");
    let events = receiver.events();
    let types: Vec<&str> = events.iter().map(|(_, e)| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.iter().filter(|t| **t == "grant.connected").count(), 2);
    assert_eq!(types.iter().filter(|t| **t == "grant.needs_reauth").count(), 1);
    assert_eq!(types.iter().filter(|t| **t == "grant.revoked").count(), 1);
    let raw = receiver.received.lock().unwrap().clone();
    for (headers, body) in &raw {
        assert!(verify_standard_webhook(&secret, headers, body), "signature verifies independently");
        assert!(!verify_standard_webhook("whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=", headers, body));
        let text = body.to_lowercase();
        assert!(
            !text.contains("access_token") && !text.contains("refresh_token") && !text.contains("secret"),
            "{body}"
        );
    }
    let needs_reauth = events.iter().find(|(_, e)| e["type"] == "grant.needs_reauth").unwrap();
    assert_eq!(needs_reauth.1["data"]["grant_id"], first.as_str());
    assert_eq!(needs_reauth.1["data"]["reason"], "superseded_by_newer_authorization");
    // Delivered once each: nothing more is sent later.
    env.vault.clock.advance(std::time::Duration::from_secs(86_400));
    assert_eq!(env.vault.vault.deliver_due_webhooks(100).await.unwrap().attempted, 0);
    let (_, log) = env.api(Method::GET, "/v1/webhook-deliveries", None).await;
    assert!(log["data"].as_array().unwrap().iter().all(|d| d["state"] == "delivered"));
}

async fn webhook_endpoint_inputs_are_validated_and_isolated(env: ConnectEnv) {
    for (body, code) in [
        (json!({ "url": "http://example.com/hook" }), "invalid_url"),
        (json!({ "url": "https://example.com/hook", "events": ["grant.exploded"] }), "invalid_event_types"),
        (json!({ "url": "https://example.com/hook", "events": [] }), "invalid_event_types"),
    ] {
        let (status, error) = env.api(Method::POST, "/v1/webhook-endpoints", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(assert_error_shape(status, &error), code);
    }
    let (_, endpoint) =
        env.api(Method::POST, "/v1/webhook-endpoints", Some(json!({ "url": "https://example.com/hook" }))).await;
    assert_eq!(
        endpoint["events"],
        json!(["grant.connected", "grant.needs_reauth", "grant.revoked", "approval.requested", "approval.decided"])
    );
    let id = endpoint["id"].as_str().unwrap();
    let (_, other) = env.vault.new_app("other").await;
    let (status, _) = env.vault.call(Method::DELETE, &format!("/v1/webhook-endpoints/{id}"), Some(&other), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env.api(Method::DELETE, &format!("/v1/webhook-endpoints/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// The signatures of the last delivery the receiver got, checked against each secret.
fn last_verifies(receiver: &Receiver, secrets: &[&str]) -> Vec<bool> {
    let raw = receiver.received.lock().unwrap().clone();
    let (headers, body) = raw.last().expect("a delivery arrived");
    secrets.iter().map(|s| verify_standard_webhook(s, headers, body)).collect()
}

async fn a_rotated_secret_signs_beside_the_old_one_for_its_grace_and_a_given_up_delivery_is_retried(env: ConnectEnv) {
    env.configure_zoom().await;
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = receiver.serve(listener);
    let body = json!({ "url": format!("http://{addr}/hook"), "events": ["grant.connected", "grant.revoked"] });
    let (_, endpoint) = env.api(Method::POST, "/v1/webhook-endpoints", Some(body)).await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let first = endpoint["secret"].as_str().unwrap().to_owned();

    let rotate = format!("/v1/webhook-endpoints/{id}/rotate-secret");
    let (status, error) = env.api(Method::POST, &rotate, Some(json!({ "grace_seconds": 604_801 }))).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grace")), "{error}");
    let (status, rotated) = env.api(Method::POST, &rotate, Some(json!({ "grace_seconds": 3600 }))).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second = rotated["secret"].as_str().unwrap().to_owned();
    assert!(second.starts_with("whsec_") && second != first);
    assert!(rotated["previous_secret_expires_at"].is_string(), "{rotated}");
    let (_, listed) = env.api(Method::GET, "/v1/webhook-endpoints", None).await;
    assert!(!listed.to_string().contains(&second), "shown once");

    // Within the grace period both secrets sign.
    let grant = env.connect_ok("user-1", "zoom").await;
    assert_eq!(env.vault.vault.deliver_due_webhooks(100).await.unwrap().delivered, 1);
    assert_eq!(last_verifies(&receiver, &[&first, &second]), [true, true]);
    // After it, only the new one.
    env.vault.clock.advance(std::time::Duration::from_secs(3601));
    let (status, _) = env.api(Method::DELETE, &format!("/v1/grants/{grant}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(env.vault.vault.deliver_due_webhooks(100).await.unwrap().delivered, 1);
    assert_eq!(last_verifies(&receiver, &[&first, &second]), [false, true]);
    // No grace: the old secret stops at once.
    let (_, rotated) = env.api(Method::POST, &rotate, Some(json!({ "grace_seconds": 0 }))).await;
    let third = rotated["secret"].as_str().unwrap().to_owned();
    assert!(rotated.get("previous_secret_expires_at").is_none(), "{rotated}");
    env.connect_ok("user-2", "zoom").await;
    assert_eq!(env.vault.vault.deliver_due_webhooks(100).await.unwrap().delivered, 1);
    assert_eq!(last_verifies(&receiver, &[&second, &third]), [false, true]);

    // A delivery to an endpoint that never answers is given up after its retries, then retried
    // by hand once the endpoint is back.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = reserved.local_addr().unwrap();
    drop(reserved);
    let body = json!({ "url": format!("http://{down}/hook"), "events": ["grant.connected"] });
    let (_, other) = env.api(Method::POST, "/v1/webhook-endpoints", Some(body)).await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    env.connect_ok("user-3", "zoom").await;
    for _ in 0..12 {
        env.vault.vault.deliver_due_webhooks(100).await.unwrap();
        env.vault.clock.advance(std::time::Duration::from_secs(86_400));
    }
    let (_, log) = env.api(Method::GET, &format!("/v1/webhook-deliveries?endpoint_id={other_id}"), None).await;
    let given_up = log["data"].as_array().unwrap().iter().find(|d| d["state"] == "failed").cloned();
    let given_up = given_up.unwrap_or_else(|| panic!("{log}"));
    let delivery = given_up["id"].as_str().unwrap();
    let attempts = given_up["attempts"].as_i64().unwrap();
    let back = Receiver::default();
    let _back = back.serve(tokio::net::TcpListener::bind(down).await.unwrap());
    let (status, retried) = env.api(Method::POST, &format!("/v1/webhook-deliveries/{delivery}/retry"), None).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["state"], "pending");
    assert_eq!(retried["message_id"], given_up["message_id"], "the same webhook-id: receivers deduplicate");
    assert_eq!(env.vault.vault.deliver_due_webhooks(100).await.unwrap().delivered, 1);
    assert_eq!(back.events().len(), 1);
    let (_, log) = env.api(Method::GET, &format!("/v1/webhook-deliveries?endpoint_id={other_id}"), None).await;
    let done = log["data"].as_array().unwrap().iter().find(|d| d["id"] == delivery).unwrap();
    assert_eq!(done["state"], "delivered");
    assert_eq!(done["attempts"].as_i64().unwrap(), attempts + 1);
    // A delivered one is not sent again; another app's is not found.
    let (status, error) = env.api(Method::POST, &format!("/v1/webhook-deliveries/{delivery}/retry"), None).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::CONFLICT, Some("already_delivered")), "{error}");
    let (_, other_key) = env.vault.new_app("other").await;
    let path = format!("/v1/webhook-deliveries/{delivery}/retry");
    assert_eq!(env.vault.call(Method::POST, &path, Some(&other_key), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(env.vault.call(Method::POST, &rotate, Some(&other_key), None).await.0, StatusCode::NOT_FOUND);
}
