//! The JSON control API (`/_fake/...`) on its own listener, for the binary and for tests running
//! in another process. Each route is a thin wrapper over a `Control` method; README.md lists them.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::control::Control;
use crate::fault::{Endpoint, Fault};
use crate::model::{ClientRegistration, ConsentMode, FakeUser};
use crate::provider::{Host, Provider};
use crate::responses;
use crate::variant::Variant;
use crate::webhooks;

#[derive(Clone)]
struct Api {
    control: Control,
    control_url: String,
}

pub fn router(control: Control, control_url: String) -> Router {
    Router::new()
        .route("/_fake/urls", get(urls))
        .route("/_fake/clock", get(clock))
        .route("/_fake/clock/advance", post(advance))
        .route("/_fake/clients", post(register_client))
        .route("/_fake/users", post(set_user))
        .route("/_fake/consent", post(set_consent))
        .route("/_fake/variant", post(set_variant))
        .route("/_fake/variants", get(variants))
        .route("/_fake/faults", post(inject).delete(clear_faults))
        .route("/_fake/calls", get(calls))
        .route("/_fake/token_requests", get(token_requests))
        .route("/_fake/tokens/active", post(token_active))
        .route("/_fake/requests", get(requests))
        .route("/_fake/evil/requests", get(evil_requests))
        .route("/_fake/reset_counters", post(reset_counters))
        .route("/_fake/revoke_user", post(revoke_user))
        .route("/_fake/zoom/deauthorization_event", post(zoom_deauthorization_event))
        .route("/_fake/zoom/sign", post(zoom_sign))
        .route("/_fake/aircall/webhook_event", post(aircall_webhook_event))
        .route("/_fake/aircall/webhooks", get(aircall_webhooks))
        .with_state(Api { control, control_url })
}

fn ok(value: Value) -> Response {
    responses::json(200, &value)
}

fn done() -> Response {
    responses::empty(204)
}

async fn urls(State(api): State<Api>) -> Response {
    let mut value = json!(api.control.urls());
    value["control"] = json!(api.control_url);
    ok(value)
}

async fn clock(State(api): State<Api>) -> Response {
    ok(json!({ "now": api.control.now() }))
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance(State(api): State<Api>, Json(body): Json<Advance>) -> Response {
    api.control.advance(Duration::from_secs(body.seconds));
    ok(json!({ "now": api.control.now() }))
}

#[derive(Deserialize)]
struct ClientBody {
    provider: Provider,
    #[serde(flatten)]
    client: ClientRegistration,
}

async fn register_client(State(api): State<Api>, Json(body): Json<ClientBody>) -> Response {
    api.control.register_client(body.provider, body.client);
    done()
}

#[derive(Deserialize)]
struct UserBody {
    provider: Provider,
    #[serde(flatten)]
    user: FakeUser,
}

async fn set_user(State(api): State<Api>, Json(body): Json<UserBody>) -> Response {
    api.control.set_user(body.provider, body.user);
    done()
}

#[derive(Deserialize)]
struct ConsentBody {
    provider: Provider,
    mode: ConsentMode,
}

async fn set_consent(State(api): State<Api>, Json(body): Json<ConsentBody>) -> Response {
    api.control.set_consent(body.provider, body.mode);
    done()
}

async fn set_variant(State(api): State<Api>, Json(variant): Json<Variant>) -> Response {
    api.control.set_variant(variant);
    done()
}

async fn variants(State(api): State<Api>) -> Response {
    ok(json!(api.control.variants()))
}

/// A `Fault` in JSON: `{"type":"status","status":503,"body":"...","retry_after":5}`,
/// `{"type":"latency","ms":500}`, `{"type":"drop_connection"}`, `{"type":"drop_after_commit"}`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FaultSpec {
    Status {
        status: u16,
        #[serde(default)]
        body: String,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    Latency {
        ms: u64,
    },
    DropConnection,
    DropAfterCommit,
    LatencyAfterCommit {
        ms: u64,
    },
}

#[derive(Deserialize)]
struct FaultBody {
    provider: Provider,
    endpoint: Endpoint,
    fault: FaultSpec,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

async fn inject(State(api): State<Api>, Json(body): Json<FaultBody>) -> Response {
    let fault = match body.fault {
        FaultSpec::Status { status, body, retry_after } => Fault::Status { status, body, retry_after },
        FaultSpec::Latency { ms } => Fault::Latency(Duration::from_millis(ms)),
        FaultSpec::DropConnection => Fault::DropConnection,
        FaultSpec::DropAfterCommit => Fault::DropAfterCommit,
        FaultSpec::LatencyAfterCommit { ms } => Fault::LatencyAfterCommit(Duration::from_millis(ms)),
    };
    api.control.inject(body.provider, body.endpoint, fault, body.times);
    done()
}

async fn clear_faults(State(api): State<Api>) -> Response {
    api.control.clear_faults();
    done()
}

#[derive(Deserialize)]
struct CallsQuery {
    provider: Option<Provider>,
    endpoint: Option<Endpoint>,
    host: Option<Host>,
}

async fn calls(State(api): State<Api>, Query(q): Query<CallsQuery>) -> Response {
    match (q.provider, q.endpoint, q.host) {
        (Some(provider), Some(endpoint), _) => ok(json!({ "count": api.control.calls(provider, endpoint) })),
        (_, _, Some(host)) => ok(json!({ "count": api.control.calls_on_host(host) })),
        _ => {
            let hosts: serde_json::Map<String, Value> =
                Host::ALL.into_iter().map(|h| (h.as_str().to_owned(), json!(api.control.calls_on_host(h)))).collect();
            ok(json!({ "calls": api.control.all_calls(), "hosts": hosts }))
        }
    }
}

#[derive(Deserialize)]
struct ProviderQuery {
    provider: Provider,
}

async fn token_requests(State(api): State<Api>, Query(q): Query<ProviderQuery>) -> Response {
    ok(json!(api.control.token_requests(q.provider)))
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TokenKind {
    Access,
    Refresh,
}

#[derive(Deserialize)]
struct TokenActiveBody {
    provider: Provider,
    token: String,
    kind: TokenKind,
}

async fn token_active(State(api): State<Api>, Json(body): Json<TokenActiveBody>) -> Response {
    let active = match body.kind {
        TokenKind::Access => api.control.is_access_token_active(body.provider, &body.token),
        TokenKind::Refresh => api.control.is_refresh_token_active(body.provider, &body.token),
    };
    ok(json!({ "active": active }))
}

#[derive(Deserialize)]
struct HostQuery {
    host: Host,
}

async fn requests(State(api): State<Api>, Query(q): Query<HostQuery>) -> Response {
    ok(json!(api.control.requests(q.host)))
}

async fn evil_requests(State(api): State<Api>) -> Response {
    ok(json!(api.control.evil_requests()))
}

async fn reset_counters(State(api): State<Api>) -> Response {
    api.control.reset_counters();
    done()
}

#[derive(Deserialize)]
struct RevokeUserBody {
    provider: Provider,
    user_id: String,
}

async fn revoke_user(State(api): State<Api>, Json(body): Json<RevokeUserBody>) -> Response {
    ok(json!({ "revoked": api.control.revoke_all_for_user(body.provider, &body.user_id) }))
}

#[derive(Deserialize)]
struct DeauthBody {
    user_id: String,
    account_id: String,
    client_id: String,
    /// When given, the answer also carries the headers to send.
    secret: Option<String>,
    /// Defaults to the fake clock.
    timestamp: Option<String>,
}

/// The event, its exact serialised body, and (with a secret) the signature headers over it.
async fn zoom_deauthorization_event(State(api): State<Api>, Json(body): Json<DeauthBody>) -> Response {
    let event = api.control.zoom_deauthorization_event(&body.user_id, &body.account_id, &body.client_id);
    let raw = event.to_string();
    let timestamp = body.timestamp.unwrap_or_else(|| api.control.now().to_string());
    let signature = body.secret.map(|secret| webhooks::zoom_sign(&secret, &timestamp, raw.as_bytes()));
    ok(json!({
        "event": event,
        "raw": raw,
        "headers": { "x-zm-request-timestamp": timestamp, "x-zm-signature": signature },
    }))
}

#[derive(Deserialize)]
struct SignBody {
    secret: String,
    timestamp: String,
    body: String,
}

async fn zoom_sign(Json(body): Json<SignBody>) -> Response {
    ok(json!({ "signature": webhooks::zoom_sign(&body.secret, &body.timestamp, body.body.as_bytes()) }))
}

#[derive(Deserialize)]
struct AircallEventBody {
    token: String,
    event: String,
}

async fn aircall_webhook_event(State(api): State<Api>, Json(body): Json<AircallEventBody>) -> Response {
    ok(api.control.aircall_webhook_event(&body.token, &body.event))
}

async fn aircall_webhooks(State(api): State<Api>) -> Response {
    ok(json!(api.control.aircall_webhooks()))
}
