//! The OpenAPI document against the real server. `GET /openapi.json` claims to describe every
//! answer exactly: which statuses an operation can give, and the shape of each body (required
//! fields, enums, bounds, closed objects). These tests drive the main flows over HTTP (admin:
//! apps, API keys, admin tokens; app: provider configurations, connect sessions, a grant connected
//! at the fake Dialpad, its token, policies, managed secrets, webhooks, the audit log) and the
//! usual mistakes, and check every answer against the document the server itself serves, with the
//! `jsonschema` crate (draft 2020-12, formats asserted, `$ref`s resolved into `components`). The
//! request bodies the server accepted are checked too: the document must not refuse them.
//! `.ci/schemathesis.sh` explores generated inputs; this covers what needs state first.

use std::collections::BTreeSet;
use std::sync::Mutex;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_testkit::Backend;

use crate::connect_env::{ConnectEnv, RETURN_URL};
use crate::support::ADMIN_TOKEN;

/// The document, and what a test learned checking answers against it.
struct Spec {
    document: Value,
    /// `(method, template, status)` of every answer checked, for the coverage assertion.
    seen: Mutex<BTreeSet<(String, String, u16)>>,
}

/// One checked answer.
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Spec {
    fn new(document: Value) -> Spec {
        Spec { document, seen: Mutex::new(BTreeSet::new()) }
    }

    fn operation(&self, method: &Method, template: &str) -> Result<&Value, String> {
        let operation = &self.document["paths"][template][method.as_str().to_ascii_lowercase()];
        if operation.is_object() { Ok(operation) } else { Err(format!("{method} {template} is not documented")) }
    }

    /// The response object documented for `status`: the exact code, else its `NXX` range, else
    /// `default`; `$ref`s into `components/responses` followed.
    fn response(&self, method: &Method, template: &str, status: u16) -> Result<&Value, String> {
        let responses = &self.operation(method, template)?["responses"];
        let range = format!("{}XX", status / 100);
        let response = [status.to_string(), range, "default".to_owned()]
            .iter()
            .map(|key| &responses[key])
            .find(|r| r.is_object())
            .ok_or_else(|| format!("{method} {template} does not document status {status}"))?;
        match response["$ref"].as_str() {
            Some(reference) => self.resolve(reference),
            None => Ok(response),
        }
    }

    fn resolve(&self, reference: &str) -> Result<&Value, String> {
        let pointer = reference.strip_prefix('#').ok_or_else(|| format!("external reference {reference}"))?;
        self.document.pointer(pointer).ok_or_else(|| format!("unresolved reference {reference}"))
    }

    /// Validates `instance` against `schema`, a schema from the document (its `$ref`s point into
    /// the document's `components`, so the components travel along as the root's).
    fn validate(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let mut root = json!({ "$schema": "https://json-schema.org/draft/2020-12/schema", "allOf": [schema] });
        root["components"] = self.document["components"].clone();
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| format!("the schema does not compile: {e}"))?;
        let errors: Vec<String> =
            validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    /// Checks one answer: the status is documented for the operation; a body is documented with
    /// that media type and valid against its schema; an answer documented without content has
    /// none. A JSON request body the server accepted must be valid against the request schema.
    fn check(
        &self,
        method: &Method,
        template: &str,
        status: StatusCode,
        content_type: Option<&str>,
        text: &str,
        request: Option<&Value>,
    ) -> Result<Value, String> {
        let response = self.response(method, template, status.as_u16())?;
        self.seen.lock().unwrap().insert((method.to_string(), template.to_owned(), status.as_u16()));
        let what = format!("{method} {template} → {status}");
        let body = match response.get("content").and_then(Value::as_object) {
            None if text.is_empty() => Value::Null,
            None => return Err(format!("{what}: documented without a body, answered {text:.200}")),
            Some(content) => {
                let media = content_type.unwrap_or_default();
                let (_, documented) = content
                    .iter()
                    .find(|(documented, _)| {
                        documented.as_str() == "*/*" || media.split(';').next() == documented.split(';').next()
                    })
                    .ok_or_else(|| format!("{what}: content type {media:?} is not documented"))?;
                if media.starts_with("application/json") && documented["schema"] != json!({}) {
                    let body: Value =
                        serde_json::from_str(text).map_err(|e| format!("{what}: the body is not JSON: {e}"))?;
                    self.validate(&documented["schema"], &body).map_err(|e| format!("{what}: {e}\n  body: {body}"))?;
                    body
                } else {
                    Value::String(text.to_owned())
                }
            }
        };
        if let Some(request) = request.filter(|_| status.is_success()) {
            let schema = &self.operation(method, template)?["requestBody"]["content"]["application/json"]["schema"];
            self.validate(schema, request).map_err(|e| {
                format!("{what}: the server accepted a body the document refuses: {e}\n  body: {request}")
            })?;
        }
        Ok(body)
    }
}

/// An HTTP client whose every answer is checked against the document.
struct Client<'a> {
    spec: &'a Spec,
    http: reqwest::Client,
    base: String,
}

impl Client<'_> {
    /// Sends `method path` (documented as `template`) with an optional bearer and JSON body, and
    /// extra headers; panics on any answer the document does not describe.
    async fn send(
        &self,
        method: Method,
        template: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &[u8])],
    ) -> Answer {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, reqwest::header::HeaderValue::from_bytes(value).unwrap());
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let content_type =
            response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = response.text().await.unwrap();
        match self.spec.check(&method, template, status, content_type.as_deref(), &text, body.as_ref()) {
            Ok(body) => Answer { status, body },
            Err(mismatch) => panic!("the answer does not match the document: {mismatch}"),
        }
    }

    async fn call(&self, method: Method, template: &str, path: &str, bearer: &str, body: Option<Value>) -> Answer {
        self.send(method, template, path, Some(bearer), body, &[]).await
    }

    /// Sends a raw body with a content type (for malformed input).
    async fn raw(
        &self,
        method: Method,
        template: &str,
        path: &str,
        bearer: &str,
        content_type: &str,
        body: &str,
    ) -> Answer {
        let response = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let content_type =
            response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = response.text().await.unwrap();
        match self.spec.check(&method, template, status, content_type.as_deref(), &text, None) {
            Ok(body) => Answer { status, body },
            Err(mismatch) => panic!("the answer does not match the document: {mismatch}"),
        }
    }
}

fn expect(answer: &Answer, status: StatusCode, code: Option<&str>) -> Value {
    assert_eq!(answer.status, status, "{}", answer.body);
    if let Some(code) = code {
        assert_eq!(answer.body["code"], code, "{}", answer.body);
    }
    answer.body.clone()
}

async fn served_spec(env: &ConnectEnv) -> Spec {
    let document: Value =
        env.vault.http.get(env.vault.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    Spec::new(document)
}

#[tokio::test]
async fn every_answer_of_the_main_flows_matches_the_document() {
    let Some(env) = ConnectEnv::start(Backend::Sqlite).await else { return };
    let spec = served_spec(&env).await;
    let client = Client { spec: &spec, http: env.vault.http.clone(), base: env.vault.base.clone() };
    admin_flows(&client).await;
    app_flows(&client, &env).await;
    error_cases(&client, &env.key).await;

    // Every operation of the flows above answered at least once, with its main success status.
    let seen = spec.seen.lock().unwrap().clone();
    let missing: Vec<&str> = [
        "GET /admin/v1/apps 200",
        "POST /admin/v1/apps 201",
        "PATCH /admin/v1/apps/{app_id} 200",
        "DELETE /admin/v1/apps/{app_id} 204",
        "POST /admin/v1/apps/{app_id}/api-keys 201",
        "DELETE /admin/v1/apps/{app_id}/api-keys/{key_id} 204",
        "POST /admin/v1/admin-tokens 201",
        "DELETE /admin/v1/admin-tokens/{id} 204",
        "GET /admin/v1/keys 200",
        "POST /v1/provider-configs 201",
        "PUT /v1/provider-configs/{id} 200",
        "POST /v1/connect-sessions 201",
        "GET /v1/connect-sessions/{id} 200",
        "GET /v1/grants 200",
        "POST /v1/grants/{id}/token 200",
        "POST /v1/grants/{id}/verify 200",
        "DELETE /v1/grants/{id} 200",
        "POST /v1/policies 201",
        "POST /v1/managed-secrets 201",
        "PUT /v1/managed-secrets/{id} 200",
        "POST /v1/webhook-endpoints 201",
        "GET /v1/webhook-deliveries 200",
        "GET /v1/audit 200",
        "GET /v1/audit/export 200",
        "GET /v1/proxy/{grant_id}/{path} 200",
        "POST /admin/v1/apps/{app_id}/api-keys/{key_id}/rotate 201",
        "POST /v1/api-keys 201",
        "POST /v1/api-keys/derive 201",
        "POST /v1/api-keys/{key_id}/rotate 201",
        "GET /v1/agents 200",
        "POST /v1/agents 201",
        "GET /v1/agents/{agent_id} 200",
        "PATCH /v1/agents/{agent_id} 200",
        "DELETE /v1/agents/{agent_id} 204",
        "POST /v1/agents/{agent_id}/keys 201",
        "GET /v1/agents/{agent_id}/delegations 200",
        "POST /v1/agents/{agent_id}/delegations 201",
        "GET /v1/delegations/{id} 200",
        "DELETE /v1/delegations/{id} 204",
    ]
    .into_iter()
    .filter(|expected| !seen.iter().any(|(m, t, s)| format!("{m} {t} {s}") == *expected))
    .collect();
    assert!(missing.is_empty(), "not exercised: {missing:?}");
}

async fn admin_flows(client: &Client<'_>) {
    let admin = ADMIN_TOKEN;
    expect(
        &client.call(Method::GET, "/admin/v1/apps", "/admin/v1/apps?limit=200", admin, None).await,
        StatusCode::OK,
        None,
    );
    let app =
        client.call(Method::POST, "/admin/v1/apps", "/admin/v1/apps", admin, Some(json!({ "name": "scratch" }))).await;
    let app_id = expect(&app, StatusCode::CREATED, None)["id"].as_str().unwrap().to_owned();
    let one = "/admin/v1/apps/{app_id}";
    let path = format!("/admin/v1/apps/{app_id}");
    expect(&client.call(Method::GET, one, &path, admin, None).await, StatusCode::OK, None);
    let update = json!({ "name": "  scratch 2  ", "return_origins": ["https://app.example.com", "http://localhost:3000"],
                         "install_return_url": "https://app.example.com/installed" });
    let updated = expect(&client.call(Method::PATCH, one, &path, admin, Some(update)).await, StatusCode::OK, None);
    assert_eq!(updated["name"], "scratch 2");
    let off = json!({ "install_return_url": null, "name": null });
    expect(&client.call(Method::PATCH, one, &path, admin, Some(off)).await, StatusCode::OK, None);

    let keys = "/admin/v1/apps/{app_id}/api-keys";
    let keys_path = format!("{path}/api-keys");
    let key = expect(
        &client.call(Method::POST, keys, &keys_path, admin, Some(json!({ "scopes": ["*"] }))).await,
        StatusCode::CREATED,
        None,
    );
    let rotate = "/admin/v1/apps/{app_id}/api-keys/{key_id}/rotate";
    let rotate_path = format!("{keys_path}/{}/rotate", key["id"].as_str().unwrap());
    expect(
        &client.call(Method::POST, rotate, &rotate_path, admin, Some(json!({ "grace_seconds": 60 }))).await,
        StatusCode::CREATED,
        None,
    );
    expect(
        &client.call(Method::POST, rotate, &rotate_path, admin, Some(json!({}))).await,
        StatusCode::CONFLICT,
        Some("rotation_not_allowed"),
    );
    expect(
        &client.call(Method::POST, keys, &keys_path, admin, Some(json!({}))).await,
        StatusCode::BAD_REQUEST,
        Some("scopes_required"),
    );
    expect(&client.call(Method::GET, keys, &keys_path, admin, None).await, StatusCode::OK, None);
    let key_path = format!("{keys_path}/{}", key["id"].as_str().unwrap());
    let revoke = "/admin/v1/apps/{app_id}/api-keys/{key_id}";
    expect(&client.call(Method::DELETE, revoke, &key_path, admin, None).await, StatusCode::NO_CONTENT, None);
    // Revoking again is a no-op; an unknown key is 404.
    expect(&client.call(Method::DELETE, revoke, &key_path, admin, None).await, StatusCode::NO_CONTENT, None);
    let unknown_key = format!("{keys_path}/key_00000000000000000000000000000000");
    expect(
        &client.call(Method::DELETE, revoke, &unknown_key, admin, None).await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );

    let tokens = "/admin/v1/admin-tokens";
    let token = client.call(Method::POST, tokens, tokens, admin, Some(json!({ "name": "ops" }))).await;
    let token_id = expect(&token, StatusCode::CREATED, None)["id"].as_str().unwrap().to_owned();
    expect(&client.call(Method::GET, tokens, tokens, admin, None).await, StatusCode::OK, None);
    let token_path = format!("{tokens}/{token_id}");
    expect(
        &client.call(Method::DELETE, "/admin/v1/admin-tokens/{id}", &token_path, admin, None).await,
        StatusCode::NO_CONTENT,
        None,
    );
    expect(&client.call(Method::GET, "/admin/v1/keys", "/admin/v1/keys", admin, None).await, StatusCode::OK, None);

    expect(&client.call(Method::DELETE, one, &path, admin, None).await, StatusCode::NO_CONTENT, None);
    expect(&client.call(Method::GET, one, &path, admin, None).await, StatusCode::NOT_FOUND, Some("not_found"));
}

/// Scoped keys, agents and delegations, every answer checked against the document.
async fn agent_flows(client: &Client<'_>, key: &str, grant_id: &str) {
    let keys = "/v1/api-keys";
    let input = json!({ "name": "reader", "scopes": ["grants:read", "keys:admin", "proxy:execute"], "expires_in": 3600,
                        "allowed_cidrs": ["127.0.0.1/32", "::1"], "rate_limit": { "requests": 1000, "per_seconds": 60 } });
    let minted = expect(&client.call(Method::POST, keys, keys, key, Some(input)).await, StatusCode::CREATED, None);
    let scoped = minted["key"].as_str().unwrap().to_owned();
    let derived = expect(
        &client
            .call(
                Method::POST,
                "/v1/api-keys/derive",
                "/v1/api-keys/derive",
                &scoped,
                Some(json!({ "scopes": ["grants:read"] })),
            )
            .await,
        StatusCode::CREATED,
        None,
    );
    assert_eq!(derived["parent_id"], minted["id"]);
    let escalation = json!({ "scopes": ["tokens:retrieve"] });
    expect(
        &client.call(Method::POST, "/v1/api-keys/derive", "/v1/api-keys/derive", &scoped, Some(escalation)).await,
        StatusCode::FORBIDDEN,
        Some("scope_escalation"),
    );
    expect(
        &client.call(Method::GET, "/v1/app", "/v1/app", &scoped, None).await,
        StatusCode::FORBIDDEN,
        Some("insufficient_scope"),
    );
    let rotate = format!("/v1/api-keys/{}/rotate", minted["id"].as_str().unwrap());
    expect(
        &client.call(Method::POST, "/v1/api-keys/{key_id}/rotate", &rotate, &scoped, Some(json!({}))).await,
        StatusCode::CREATED,
        None,
    );

    let agents = "/v1/agents";
    let agent = json!({ "name": "assistant", "description": "reads meetings", "metadata": { "model": "x" } });
    let agent = expect(&client.call(Method::POST, agents, agents, key, Some(agent)).await, StatusCode::CREATED, None);
    let agent_path = format!("/v1/agents/{}", agent["id"].as_str().unwrap());
    let one = "/v1/agents/{agent_id}";
    expect(&client.call(Method::GET, agents, agents, key, None).await, StatusCode::OK, None);
    expect(&client.call(Method::GET, one, &agent_path, key, None).await, StatusCode::OK, None);
    let suspended = client.call(Method::PATCH, one, &agent_path, key, Some(json!({ "status": "suspended" }))).await;
    assert_eq!(expect(&suspended, StatusCode::OK, None)["status"], "suspended");
    expect(
        &client
            .call(Method::PATCH, one, &agent_path, key, Some(json!({ "status": "active", "name": "assistant 2" })))
            .await,
        StatusCode::OK,
        None,
    );
    let agent_keys = "/v1/agents/{agent_id}/keys";
    let agent_key = expect(
        &client.call(Method::POST, agent_keys, &format!("{agent_path}/keys"), key, Some(json!({}))).await,
        StatusCode::CREATED,
        None,
    );
    let agent_key = agent_key["key"].as_str().unwrap().to_owned();
    let delegations = "/v1/agents/{agent_id}/delegations";
    let delegations_path = format!("{agent_path}/delegations");
    let input = json!({ "grant_id": grant_id, "methods": ["GET"], "paths": ["/api/v2/**"], "expires_in": 3600 });
    let delegation = expect(
        &client.call(Method::POST, delegations, &delegations_path, key, Some(input)).await,
        StatusCode::CREATED,
        None,
    );
    expect(&client.call(Method::GET, delegations, &delegations_path, key, None).await, StatusCode::OK, None);
    let delegation_path = format!("/v1/delegations/{}", delegation["id"].as_str().unwrap());
    expect(&client.call(Method::GET, "/v1/delegations/{id}", &delegation_path, key, None).await, StatusCode::OK, None);
    let proxied = format!("/v1/proxy/{grant_id}/api/v2/echo/x");
    expect(
        &client.call(Method::GET, "/v1/proxy/{grant_id}/{path}", &proxied, &agent_key, None).await,
        StatusCode::OK,
        None,
    );
    expect(
        &client.call(Method::POST, "/v1/proxy/{grant_id}/{path}", &proxied, &agent_key, Some(json!({}))).await,
        StatusCode::FORBIDDEN,
        Some("delegation_denied"),
    );
    expect(
        &client
            .call(Method::POST, "/v1/grants/{id}/token", &format!("/v1/grants/{grant_id}/token"), &agent_key, None)
            .await,
        StatusCode::FORBIDDEN,
        Some("insufficient_scope"),
    );
    expect(
        &client.call(Method::DELETE, "/v1/delegations/{id}", &delegation_path, key, None).await,
        StatusCode::NO_CONTENT,
        None,
    );
    expect(
        &client.call(Method::GET, "/v1/proxy/{grant_id}/{path}", &proxied, &agent_key, None).await,
        StatusCode::NOT_FOUND,
        None,
    );
    expect(&client.call(Method::DELETE, one, &agent_path, key, None).await, StatusCode::NO_CONTENT, None);
    expect(
        &client.call(Method::GET, "/v1/grants", "/v1/grants", &agent_key, None).await,
        StatusCode::UNAUTHORIZED,
        Some("invalid_api_key"),
    );
}

async fn app_flows(client: &Client<'_>, env: &ConnectEnv) {
    let key = env.key.as_str();
    expect(&client.call(Method::GET, "/v1/app", "/v1/app", key, None).await, StatusCode::OK, None);
    expect(&client.send(Method::GET, "/v1/providers", "/v1/providers", None, None, &[]).await, StatusCode::OK, None);
    expect(&client.call(Method::GET, "/v1/api-keys", "/v1/api-keys", key, None).await, StatusCode::OK, None);

    // Provider configurations: one made here (never connected), one the connect flow uses.
    let configs = "/v1/provider-configs";
    let zoom = json!({ "provider": "zoom", "client_id": "zoom-client", "client_secret": "zoom-secret-1", "webhook_secret": "zoom-hook" });
    let zoom = expect(&client.call(Method::POST, configs, configs, key, Some(zoom)).await, StatusCode::CREATED, None);
    let zoom_path = format!("{configs}/{}", zoom["id"].as_str().unwrap());
    let config = "/v1/provider-configs/{id}";
    let replace = json!({ "provider": "zoom", "client_id": "zoom-client-2", "client_secret": "zoom-secret-2" });
    expect(&client.call(Method::PUT, config, &zoom_path, key, Some(replace)).await, StatusCode::OK, None);
    let dialpad = env.configure_dialpad("production", None).await;
    let dialpad_path = format!("{configs}/{}", dialpad["id"].as_str().unwrap());
    expect(&client.call(Method::GET, config, &dialpad_path, key, None).await, StatusCode::OK, None);
    expect(&client.call(Method::GET, configs, configs, key, None).await, StatusCode::OK, None);
    let duplicate = json!({ "provider": "zoom", "client_id": "again", "client_secret": "again" });
    expect(&client.call(Method::POST, configs, configs, key, Some(duplicate)).await, StatusCode::CONFLICT, None);

    // A connect session, polled; then a grant connected through the fake Dialpad.
    let sessions = "/v1/connect-sessions";
    let input = json!({ "end_user_id": "alice", "providers": ["dialpad-production"], "return_url": RETURN_URL, "ttl_seconds": 600.0 });
    let session =
        expect(&client.call(Method::POST, sessions, sessions, key, Some(input)).await, StatusCode::CREATED, None);
    let session_path = format!("{sessions}/{}", session["id"].as_str().unwrap());
    expect(
        &client.call(Method::GET, "/v1/connect-sessions/{id}", &session_path, key, None).await,
        StatusCode::OK,
        None,
    );
    let grant_id = env.connect_ok("alice", "dialpad-production").await;
    agent_flows(client, key, &grant_id).await;
    let grant = "/v1/grants/{id}";
    let grant_path = format!("/v1/grants/{grant_id}");
    expect(
        &client.call(Method::GET, "/v1/grants", "/v1/grants?status=active&end_user_id=alice&limit=10", key, None).await,
        StatusCode::OK,
        None,
    );
    expect(&client.call(Method::GET, grant, &grant_path, key, None).await, StatusCode::OK, None);
    let actor: &[(&str, &[u8])] = &[
        ("x-actor-type", b"ai_agent".as_slice()),
        ("x-actor-id", b"agent-7".as_slice()),
        ("x-actor-reason", b"a check".as_slice()),
    ];
    let token = client
        .send(Method::POST, "/v1/grants/{id}/token", &format!("{grant_path}/token"), Some(key), None, actor)
        .await;
    expect(&token, StatusCode::OK, None);
    expect(
        &client.call(Method::POST, "/v1/grants/{id}/verify", &format!("{grant_path}/verify"), key, None).await,
        StatusCode::OK,
        None,
    );
    let proxied = client
        .call(Method::GET, "/v1/proxy/{grant_id}/{path}", &format!("/v1/proxy/{grant_id}/api/v2/echo/x"), key, None)
        .await;
    assert!(proxied.status.is_success(), "{}", proxied.body);

    // Policies: on the app, on the configuration, on the grant.
    let policies = "/v1/policies";
    let rules = json!({ "methods": ["GET"], "paths": ["/api/**"], "ip_allowlist": ["127.0.0.0/8", "0:0:0:0:0:0:0:1"],
                        "rate_limit": { "requests": 100, "per_seconds": 60.0 }, "time_windows": [{ "start": "00:00", "end": "23:59" }],
                        "actor_types": ["ai_agent", "service"], "max_grant_age_days": 365 });
    for (target_type, target_id) in
        [("app", Value::Null), ("provider_config", dialpad["id"].clone()), ("grant", json!(grant_id))]
    {
        let mut input = json!({ "target_type": target_type, "rules": rules });
        if !target_id.is_null() {
            input["target_id"] = target_id;
        }
        let policy =
            expect(&client.call(Method::POST, policies, policies, key, Some(input)).await, StatusCode::CREATED, None);
        let policy_path = format!("{policies}/{}", policy["id"].as_str().unwrap());
        expect(
            &client.call(Method::DELETE, "/v1/policies/{id}", &policy_path, key, None).await,
            StatusCode::NO_CONTENT,
            None,
        );
    }
    expect(&client.call(Method::GET, policies, policies, key, None).await, StatusCode::OK, None);

    // Managed secrets, one per style.
    let secrets = "/v1/managed-secrets";
    let secret = "/v1/managed-secrets/{id}";
    for input in [
        json!({ "name": "api", "style": "bearer", "secret": "s3cret-token", "base_urls": ["https://api.example.com/v1"] }),
        json!({ "name": "hdr", "style": "header", "header_name": "X-Api-Key", "secret": "k", "base_urls": ["https://api.example.com"], "end_user_id": "alice" }),
        json!({ "name": "basic", "style": "basic", "username": "svc", "secret": "pässword", "base_urls": ["https://api.example.com"] }),
        json!({ "name": "q", "style": "query", "query_parameter": "api_key", "secret": "k", "base_urls": ["https://api.example.com"], "header_name": null }),
    ] {
        let created = expect(
            &client.call(Method::POST, secrets, secrets, key, Some(input.clone())).await,
            StatusCode::CREATED,
            None,
        );
        let path = format!("{secrets}/{}", created["id"].as_str().unwrap());
        expect(&client.call(Method::GET, secret, &path, key, None).await, StatusCode::OK, None);
        let mut replaced = input;
        replaced["secret"] = json!("rotated");
        expect(&client.call(Method::PUT, secret, &path, key, Some(replaced)).await, StatusCode::OK, None);
        expect(&client.call(Method::DELETE, secret, &path, key, None).await, StatusCode::NO_CONTENT, None);
    }
    expect(&client.call(Method::GET, secrets, secrets, key, None).await, StatusCode::OK, None);

    // Webhook endpoints (nothing listens there: deliveries fail and are retried, which is fine).
    let endpoints = "/v1/webhook-endpoints";
    let input = json!({ "url": "http://127.0.0.1:9/hooks", "events": ["grant.revoked"] });
    let endpoint =
        expect(&client.call(Method::POST, endpoints, endpoints, key, Some(input)).await, StatusCode::CREATED, None);
    expect(&client.call(Method::GET, endpoints, endpoints, key, None).await, StatusCode::OK, None);

    // Disconnect (a webhook delivery is queued), then what the log and deliveries show.
    expect(&client.call(Method::DELETE, grant, &grant_path, key, None).await, StatusCode::OK, None);
    expect(
        &client.call(Method::POST, "/v1/grants/{id}/token", &format!("{grant_path}/token"), key, None).await,
        StatusCode::GONE,
        None,
    );
    let deliveries = format!("/v1/webhook-deliveries?endpoint_id={}&limit=5", endpoint["id"].as_str().unwrap());
    expect(&client.call(Method::GET, "/v1/webhook-deliveries", &deliveries, key, None).await, StatusCode::OK, None);
    let endpoint_path = format!("{endpoints}/{}", endpoint["id"].as_str().unwrap());
    expect(
        &client.call(Method::DELETE, "/v1/webhook-endpoints/{id}", &endpoint_path, key, None).await,
        StatusCode::NO_CONTENT,
        None,
    );
    let audit =
        client.call(Method::GET, "/v1/audit", "/v1/audit?limit=1000&from=2000-01-01T00:00:00Z", key, None).await;
    assert!(!expect(&audit, StatusCode::OK, None)["data"].as_array().unwrap().is_empty());
    let export = client.call(Method::GET, "/v1/audit/export", "/v1/audit/export", key, None).await;
    let lines = expect(&export, StatusCode::OK, None);
    let event_schema = json!({ "$ref": "#/components/schemas/AuditEvent" });
    for line in lines.as_str().unwrap().lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        spec_of(client).validate(&event_schema, &event).unwrap_or_else(|e| panic!("an exported event: {e}\n  {event}"));
    }
    expect(&client.call(Method::DELETE, config, &zoom_path, key, None).await, StatusCode::NO_CONTENT, None);
}

fn spec_of<'a>(client: &'a Client<'a>) -> &'a Spec {
    client.spec
}

async fn error_cases(client: &Client<'_>, key: &str) {
    let apps = "/admin/v1/apps";
    let admin = ADMIN_TOKEN;
    // Credentials.
    expect(
        &client.send(Method::GET, "/v1/app", "/v1/app", None, None, &[]).await,
        StatusCode::UNAUTHORIZED,
        Some("missing_credentials"),
    );
    expect(
        &client.call(Method::GET, "/v1/app", "/v1/app", "wrong", None).await,
        StatusCode::UNAUTHORIZED,
        Some("invalid_api_key"),
    );
    expect(&client.call(Method::GET, apps, apps, key, None).await, StatusCode::UNAUTHORIZED, None);
    // Bodies.
    expect(
        &client.call(Method::POST, apps, apps, admin, Some(json!({}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("invalid_body"),
    );
    expect(
        &client.call(Method::POST, apps, apps, admin, Some(json!({ "name": "x", "extra": 1 }))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("invalid_body"),
    );
    expect(
        &client.call(Method::POST, apps, apps, admin, Some(json!(["x"]))).await,
        StatusCode::BAD_REQUEST,
        Some("body_not_object"),
    );
    expect(
        &client.call(Method::POST, apps, apps, admin, Some(json!({ "name": "\t" }))).await,
        StatusCode::BAD_REQUEST,
        Some("invalid_name"),
    );
    expect(
        &client.raw(Method::POST, apps, apps, admin, "application/json", "{\"name\":").await,
        StatusCode::BAD_REQUEST,
        Some("malformed_json"),
    );
    expect(
        &client.raw(Method::POST, apps, apps, admin, "text/plain", "{}").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Some("unsupported_media_type"),
    );
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(70 * 1024));
    expect(
        &client.raw(Method::POST, apps, apps, admin, "application/json", &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        Some("payload_too_large"),
    );
    // Ids, queries, headers.
    let one = "/admin/v1/apps/{app_id}";
    expect(
        &client.call(Method::GET, one, "/admin/v1/apps/app_x", admin, None).await,
        StatusCode::BAD_REQUEST,
        Some("invalid_id"),
    );
    let unknown = "/admin/v1/apps/app_00000000000000000000000000000000";
    expect(&client.call(Method::GET, one, unknown, admin, None).await, StatusCode::NOT_FOUND, Some("not_found"));
    for query in ["limit=abc", "limit=-1", "limit=0", "limit=201", "limit="] {
        let answer = client.call(Method::GET, apps, &format!("{apps}?{query}"), admin, None).await;
        expect(&answer, StatusCode::BAD_REQUEST, Some("invalid_limit"));
    }
    expect(
        &client.call(Method::GET, apps, &format!("{apps}?colour=red"), admin, None).await,
        StatusCode::BAD_REQUEST,
        Some("invalid_query"),
    );
    expect(
        &client.call(Method::GET, "/v1/audit/export", "/v1/audit/export?limit=5", key, None).await,
        StatusCode::BAD_REQUEST,
        Some("invalid_query"),
    );
    expect(
        &client.call(Method::GET, "/v1/grants", "/v1/grants?status=gone", key, None).await,
        StatusCode::BAD_REQUEST,
        Some("invalid_status"),
    );
    let patch = Some(json!({ "name": "acme" }));
    for header in [
        &("x-actor-id", "ag\u{e9}nt".as_bytes()),
        &("x-actor-type", b"robot".as_slice()),
        &("x-actor-reason", &[b'a'; 513][..]),
    ] {
        let answer = client.send(Method::PATCH, "/v1/app", "/v1/app", Some(key), patch.clone(), &[*header]).await;
        expect(&answer, StatusCode::BAD_REQUEST, Some("invalid_actor"));
    }
    let long = format!("/v1/grants?end_user_id={}", "x".repeat(9000));
    expect(
        &client.call(Method::GET, "/v1/grants", &long, key, None).await,
        StatusCode::URI_TOO_LONG,
        Some("uri_too_long"),
    );
    let input = json!({ "end_user_id": "bob", "return_url": "https://elsewhere.example.org/x" });
    let sessions = "/v1/connect-sessions";
    expect(
        &client.call(Method::POST, sessions, sessions, key, Some(input)).await,
        StatusCode::BAD_REQUEST,
        Some("return_url_not_allowed"),
    );
    let grant = "/v1/proxy/{grant_id}";
    let unknown_grant = "/v1/proxy/grt_00000000000000000000000000000000";
    expect(
        &client
            .send(
                Method::GET,
                grant,
                unknown_grant,
                Some(key),
                None,
                &[("x-tokenvault-base-url", b"not a url".as_slice())],
            )
            .await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );
}

/// The checker itself must be able to fail: a wrong body, a missing field, an undocumented
/// status and an undocumented content type are all caught.
#[test]
fn the_checker_refuses_what_the_document_does_not_describe() {
    let document: Value = serde_json::from_str(include_str!("../../../http/openapi.json")).unwrap();
    let spec = Spec::new(document);
    let app = json!({ "id": "app_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e", "name": "acme", "created_at": "2026-01-02T03:04:05.678Z",
                      "return_origins": [], "install_return_url": null,
                      "branding": { "display_name": null, "logo_url": null, "accent_color": null, "support_url": null } });
    let get = Method::GET;
    let template = "/admin/v1/apps/{app_id}";
    let ok =
        |body: &Value| spec.check(&get, template, StatusCode::OK, Some("application/json"), &body.to_string(), None);
    ok(&app).expect("a correct app is accepted");
    let mut extra = app.clone();
    extra["secret"] = json!("x");
    assert!(ok(&extra).unwrap_err().contains("secret"), "an unknown field is refused");
    let mut missing = app.clone();
    missing.as_object_mut().unwrap().remove("install_return_url");
    assert!(ok(&missing).is_err(), "a missing required field is refused");
    let mut wrong = app.clone();
    wrong["id"] = json!("key_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e");
    assert!(ok(&wrong).is_err(), "an id of the wrong kind is refused");
    let mut time = app.clone();
    time["created_at"] = json!("yesterday");
    assert!(ok(&time).is_err(), "a timestamp that is not RFC 3339 is refused");
    let error = json!({ "status": 404, "code": "not_found", "message": "app not found", "request_id": "r1" });
    spec.check(&get, template, StatusCode::NOT_FOUND, Some("application/json"), &error.to_string(), None).unwrap();
    let teapot =
        spec.check(&get, template, StatusCode::IM_A_TEAPOT, Some("application/json"), &error.to_string(), None);
    assert!(teapot.unwrap_err().contains("does not document status 418"));
    let html = spec.check(&get, template, StatusCode::OK, Some("text/html"), "<p>hi</p>", None);
    assert!(html.unwrap_err().contains("not documented"));
    let accepted = json!({ "name": "acme", "colour": "red" });
    let post = spec.check(
        &Method::POST,
        "/admin/v1/apps",
        StatusCode::CREATED,
        Some("application/json"),
        &app.to_string(),
        Some(&accepted),
    );
    assert!(post.unwrap_err().contains("accepted a body the document refuses"));
}
