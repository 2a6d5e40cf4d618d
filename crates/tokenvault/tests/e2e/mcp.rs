//! Issue 12, the MCP endpoint: a real MCP client (the official Python SDK, `mcp`, which .ci/run
//! installs) connects to `/mcp` with an agent key, lists the tools and resources, lists its
//! connections, calls the Zoom API through a delegated grant, hits an approval and completes it;
//! an agent without delegations sees nothing; a bad key is refused at the transport.
//!
//! The client's interpreter is `TOKENVAULT_TEST_MCP_PYTHON` (a Python with `mcp` installed). Without
//! it the tests skip loudly, unless `CI` is set, which makes them fail.

use std::io::Write;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_fakes::Host;

use crate::connect_env::ConnectEnv;
use crate::connect_tests;

connect_tests!(
    an_agent_lists_calls_and_completes_an_approval_over_mcp,
    an_agent_without_delegations_sees_nothing_and_bad_keys_are_refused_at_the_transport,
);

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py");

fn python() -> Option<String> {
    match std::env::var("TOKENVAULT_TEST_MCP_PYTHON") {
        Ok(path) if !path.is_empty() => Some(path),
        _ if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") => {
            panic!("CI needs TOKENVAULT_TEST_MCP_PYTHON: a Python with the `mcp` package (.ci/run sets it)")
        }
        _ => {
            // Straight to stderr: a skip must never be silent.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: the MCP client test needs TOKENVAULT_TEST_MCP_PYTHON (a Python with `mcp`) ***\n"
            );
            None
        }
    }
}

/// Runs the official client with these steps; `Err` with its error text when it cannot connect.
async fn mcp(python: &str, env: &ConnectEnv, key: &str, steps: Value) -> Result<Value, String> {
    let output = tokio::process::Command::new(python)
        .arg(CLIENT)
        .arg(env.vault.url("/mcp"))
        .arg(key)
        .arg(steps.to_string())
        .output()
        .await
        .expect("the MCP client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("client output: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    if output.status.success() { Ok(parsed) } else { Err(parsed["error"].as_str().unwrap_or_default().to_owned()) }
}

fn deletes(env: &ConnectEnv) -> usize {
    [Host::ZoomApi, Host::ZoomApiAlt]
        .into_iter()
        .flat_map(|h| env.fakes.control().requests(h))
        .filter(|r| r.method == "DELETE")
        .count()
}

async fn agent_with_key(env: &ConnectEnv, scopes: Value) -> (String, String) {
    let (_, agent) = env.api(Method::POST, "/v1/agents", Some(json!({ "name": "mcp-assistant" }))).await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    let (status, minted) =
        env.api(Method::POST, &format!("/v1/agents/{agent_id}/keys"), Some(json!({ "scopes": scopes }))).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    (agent_id, minted["key"].as_str().unwrap().to_owned())
}

async fn an_agent_lists_calls_and_completes_an_approval_over_mcp(env: ConnectEnv) {
    let Some(python) = python() else { return };
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (agent_id, key) = agent_with_key(&env, json!(["grants:read", "proxy:execute"])).await;
    let (status, _) = env
        .api(
            Method::POST,
            &format!("/v1/agents/{agent_id}/delegations"),
            Some(json!({ "grant_id": grant_id, "methods": ["GET", "DELETE"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let policy = json!({ "target_type": "agent", "target_id": agent_id,
        "rules": { "require_approval": { "methods": ["DELETE"], "paths": ["/v2/meetings/*"] } } });
    assert_eq!(env.api(Method::POST, "/v1/policies", Some(policy)).await.0, StatusCode::CREATED);

    let steps = json!([
        { "tool": "list_connections" },
        { "tool": "call_api", "arguments": { "grant_id": grant_id, "method": "GET", "path": "/v2/users/me" } },
        { "tool": "call_api", "arguments": { "grant_id": grant_id, "method": "DELETE", "path": "/v2/meetings/85746065",
            "reason": "the user cancelled the review" } },
        { "resource": "tokenvault://providers/zoom" },
    ]);
    let out = mcp(&python, &env, &key, steps).await.expect("the client connects");
    assert_eq!(out["server"], "tokenvault");
    let mut tools: Vec<&str> = out["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    tools.sort();
    assert_eq!(tools, ["call_api", "check_approval", "list_connections", "start_connection"]);
    let call_api = out["tools"].as_array().unwrap().iter().find(|t| t["name"] == "call_api").unwrap();
    assert_eq!(call_api["input_schema"]["required"], json!(["grant_id", "method", "path"]));
    let resources = out["resources"].as_array().unwrap();
    for provider in ["zoom", "dialpad", "aircall"] {
        assert!(resources.contains(&json!(format!("tokenvault://providers/{provider}"))), "{resources:?}");
    }
    let results = out["results"].as_array().unwrap();
    let connections = &results[0]["content"][0]["connections"];
    assert_eq!(connections.as_array().unwrap().len(), 1, "{connections}");
    assert_eq!(connections[0]["grant_id"], grant_id.as_str());
    assert_eq!(connections[0]["provider"], "zoom");
    assert_eq!(connections[0]["allowed_methods"], json!(["GET", "DELETE"]));
    assert!(!out.to_string().contains("access_token") && !out.to_string().contains("refresh_token"));
    let me = &results[1];
    assert_eq!((me["is_error"].as_bool(), me["content"][0]["status"].as_u64()), (Some(false), Some(200)), "{me}");
    assert!(me["content"][0]["body"]["id"].is_string(), "{me}");
    let held = &results[2]["content"][0];
    assert_eq!(held["status"], "pending_approval", "{held}");
    let approval_id = held["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(deletes(&env), 0, "a held call is not sent");
    assert!(results[3]["text"].as_str().unwrap().contains("/v2/users/me"));

    // The approval is the same one the HTTP API shows, with the agent's stated reason.
    let (_, approval) = env.api(Method::GET, &format!("/v1/approvals/{approval_id}"), None).await;
    assert_eq!(approval["requested_by"]["agent_id"], agent_id.as_str());
    assert_eq!(approval["requested_by"]["actor"]["reason"], "the user cancelled the review");
    let check = json!([{ "tool": "check_approval", "arguments": { "approval_id": approval_id, "wait_seconds": 0 } }]);
    let out = mcp(&python, &env, &key, check.clone()).await.unwrap();
    assert_eq!(out["results"][0]["content"][0]["status"], "pending_approval", "{out}");
    let (status, _) = env.api(Method::POST, &format!("/v1/approvals/{approval_id}/approve"), None).await;
    assert_eq!(status, StatusCode::OK);
    let out = mcp(&python, &env, &key, check.clone()).await.unwrap();
    let done = &out["results"][0];
    assert_eq!((done["is_error"].as_bool(), done["content"][0]["status"].as_u64()), (Some(false), Some(204)), "{done}");
    assert_eq!(deletes(&env), 1, "executed exactly once");
    // Asking again gives the kept answer once, then says it was executed; never a second call.
    let out = mcp(&python, &env, &key, json!([check[0].clone(), check[0].clone()])).await.unwrap();
    assert_eq!(out["results"][0]["content"][0]["status"], 204, "{out}");
    assert_eq!(out["results"][1]["is_error"], true, "{out}");
    assert_eq!(deletes(&env), 1);
    // The agent's MCP calls are in the audit log under its verified id.
    let (_, audit) = env.api(Method::GET, &format!("/v1/audit?agent_id={agent_id}&action=proxy.request"), None).await;
    assert!(audit["data"].as_array().unwrap().len() >= 3, "{audit}");
}

async fn an_agent_without_delegations_sees_nothing_and_bad_keys_are_refused_at_the_transport(env: ConnectEnv) {
    let Some(python) = python() else { return };
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (_, key) = agent_with_key(&env, json!(["grants:read", "proxy:execute", "connect:initiate"])).await;
    let steps = json!([
        { "tool": "list_connections" },
        { "tool": "call_api", "arguments": { "grant_id": grant_id, "method": "GET", "path": "/v2/users/me" } },
        { "tool": "start_connection", "arguments": { "end_user_id": "user-2", "provider": "zoom" } },
        { "tool": "check_approval", "arguments": { "approval_id": "apr_00000000000000000000000000000000" } },
    ]);
    let out = mcp(&python, &env, &key, steps).await.unwrap();
    let results = out["results"].as_array().unwrap();
    assert_eq!(results[0]["content"][0]["connections"], json!([]), "{out}");
    assert_eq!(results[1]["is_error"], true);
    assert_eq!(results[1]["content"][0]["error"], "not_found", "{out}");
    assert_eq!(results[2]["is_error"], false, "{out}");
    assert!(results[2]["content"][0]["connect_url"].as_str().unwrap().contains("/connect/"), "{out}");
    assert_eq!(results[3]["content"][0]["error"], "not_found", "{out}");

    // Refused at the transport, before any MCP message: no key, a bad key, a key without the scope.
    let post = |key: Option<String>| {
        let request =
            env.vault.http.post(env.vault.url("/mcp")).header("accept", "application/json, text/event-stream");
        let request = match key {
            Some(k) => request.bearer_auth(k),
            None => request,
        };
        async move {
            let response =
                request.json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" })).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap_or_default())
        }
    };
    let (status, body) = post(None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("missing_credentials")));
    let (status, body) = post(Some("tvk_not_a_real_key".into())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let app_id = env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
    let (_, reader) = env
        .vault
        .admin(Method::POST, &format!("/apps/{app_id}/api-keys"), Some(json!({ "scopes": ["grants:read"] })))
        .await;
    let (status, body) = post(reader["key"].as_str().map(str::to_owned)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")), "{body}");
    let refused = mcp(&python, &env, "tvk_not_a_real_key", json!([])).await;
    assert!(refused.is_err(), "the official client cannot connect with a bad key");
}
