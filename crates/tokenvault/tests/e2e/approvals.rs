//! Issue 12, approvals: a `require_approval` rule holds a proxied call; people approve or deny it
//! through the API or a one-use link; the caller executes it exactly once, under the policies of
//! the moment, and fetches the answer. Every case counts what the fake provider really received.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_fakes::Host;

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::support::assert_error_shape;

connect_tests!(
    an_approved_call_is_executed_exactly_once_and_its_answer_fetched_once,
    a_denied_call_is_never_sent,
    an_approval_expires_on_the_clock,
    nobody_approves_their_own_call_and_n_of_m_counts_distinct_approvers,
    a_policy_tightened_after_the_request_refuses_the_execution,
    a_restart_between_approval_and_execution_loses_nothing,
);

const MEETING: &str = "/v2/meetings/85746065";

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

/// Calls that reached the fake Zoom API with this method and path prefix.
fn upstream_calls(env: &ConnectEnv, method: &str, path: &str) -> usize {
    [Host::ZoomApi, Host::ZoomApiAlt]
        .into_iter()
        .flat_map(|host| env.fakes.control().requests(host))
        .filter(|r| r.method == method && r.path.starts_with(path))
        .count()
}

/// Zoom connected, an agent holding a delegation of the grant and a key, and an app policy that
/// holds `DELETE /v2/meetings/*` (plus whatever `rule` adds).
async fn setup(env: &ConnectEnv, rule: Value) -> (String, String) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (_, agent) = env.api(Method::POST, "/v1/agents", Some(json!({ "name": "assistant" }))).await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    let (status, minted) = env.api(Method::POST, &format!("/v1/agents/{agent_id}/keys"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let agent_key = minted["key"].as_str().unwrap().to_owned();
    let (status, body) = env
        .api(Method::POST, &format!("/v1/agents/{agent_id}/delegations"), Some(json!({ "grant_id": grant_id })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut require = json!({ "methods": ["DELETE"], "paths": ["/v2/meetings/*"] });
    for (k, v) in rule.as_object().unwrap() {
        require[k] = v.clone();
    }
    let policy = json!({ "target_type": "app", "rules": { "require_approval": require } });
    let (status, body) = env.api(Method::POST, "/v1/policies", Some(policy)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (grant_id, agent_key)
}

/// The held call: `202`, the approval's id, and nothing sent to Zoom.
async fn held_delete(env: &ConnectEnv, key: &str, grant_id: &str) -> String {
    let response = env
        .vault
        .http
        .delete(env.vault.url(&format!("/v1/proxy/{grant_id}{MEETING}")))
        .bearer_auth(key)
        .header("x-actor-type", "ai_agent")
        .header("x-actor-reason", "the user asked to cancel the meeting")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(body["id"], id);
    assert_eq!(location, format!("/v1/approvals/{id}"));
    assert_eq!(body["status"], "pending");
    assert!(body["approval_url"].as_str().unwrap().ends_with(&location), "{body}");
    assert!(body["expires_at"].is_string());
    assert_eq!(body["request"]["method"], "DELETE");
    assert_eq!(body["request"]["path"], MEETING);
    assert_eq!(body["requested_by"]["actor"]["reason"], "the user asked to cancel the meeting");
    assert_eq!(upstream_calls(env, "DELETE", "/v2/meetings"), 0, "a held call is not sent");
    id
}

async fn call(env: &ConnectEnv, key: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    env.vault.call(method, path, Some(key), body).await
}

async fn an_approved_call_is_executed_exactly_once_and_its_answer_fetched_once(env: ConnectEnv) {
    let (grant_id, agent_key) = setup(&env, json!({})).await;
    // A webhook endpoint with the default events hears of requests and decisions.
    let (status, hook) =
        env.api(Method::POST, "/v1/webhook-endpoints", Some(json!({ "url": "http://127.0.0.1:9/hook" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    // Calls the rule does not match go through at once.
    let (status, _) = call(&env, &agent_key, Method::GET, &format!("/v1/proxy/{grant_id}/v2/users/me"), None).await;
    assert_eq!(status, StatusCode::OK);
    // The raw token would bypass the approvals: refused while such a rule applies.
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "policy_denied"), "{body}");
    assert!(body["message"].as_str().unwrap().contains("require_approval"));

    let id = held_delete(&env, &agent_key, &grant_id).await;
    let approval = format!("/v1/approvals/{id}");
    let (status, seen) = call(&env, &agent_key, Method::GET, &approval, None).await;
    assert_eq!((status, seen["status"].as_str()), (StatusCode::OK, Some("pending")), "{seen}");
    // The agent can neither approve its own call nor run it before approval.
    let (status, body) = call(&env, &agent_key, Method::POST, &format!("{approval}/approve"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(&env, &agent_key, Method::POST, &format!("{approval}/execute"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "approval_pending"), "{body}");
    assert_error_shape(status, &body);

    // A long poll started now answers when the operator approves.
    let waiter = {
        let http = env.vault.http.clone();
        let url = env.vault.url(&format!("{approval}?wait=25"));
        let key = agent_key.clone();
        tokio::spawn(async move {
            let response = http.get(url).bearer_auth(key).send().await.unwrap();
            response.json::<Value>().await.unwrap()
        })
    };
    let (status, decided) =
        env.api(Method::POST, &format!("{approval}/approve"), Some(json!({ "comment": "fine, go ahead" }))).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decisions"][0]["comment"], "fine, go ahead");
    assert_eq!(decided["decisions"][0]["approver"], "operator");
    let polled = tokio::time::timeout(Duration::from_secs(20), waiter).await.expect("the long poll answers").unwrap();
    assert_eq!(polled["status"], "approved", "{polled}");

    // Executed once: Zoom saw exactly one DELETE.
    let response = env
        .vault
        .http
        .post(env.vault.url(&format!("{approval}/execute")))
        .bearer_auth(&agent_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()["x-tokenvault-approval-id"], id.as_str());
    assert_eq!(upstream_calls(&env, "DELETE", "/v2/meetings"), 1);
    let (status, body) = call(&env, &agent_key, Method::POST, &format!("{approval}/execute"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_executed"), "{body}");
    assert_eq!(upstream_calls(&env, "DELETE", "/v2/meetings"), 1, "a replay is refused, not sent");
    let (_, seen) = call(&env, &agent_key, Method::GET, &approval, None).await;
    assert_eq!((seen["status"].as_str(), seen["result_status"].as_i64()), (Some("executed"), Some(204)), "{seen}");
    assert_eq!(seen["result_available"], true);
    // The kept answer is fetched once.
    let (status, _) = call(&env, &agent_key, Method::GET, &format!("{approval}/result"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(&env, &agent_key, Method::GET, &format!("{approval}/result"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::GONE, "approval_result_gone"), "{body}");

    // Audited: the held row, the decision, the execution (with the approval named).
    let (_, audit) = env.api(Method::GET, "/v1/audit?limit=100", None).await;
    let rows = audit["data"].as_array().unwrap();
    let has = |action: &str, outcome: &str| rows.iter().any(|r| r["action"] == action && r["outcome"] == outcome);
    assert!(has("proxy.request", "held"), "{audit}");
    assert!(has("approval.requested", "success") && has("approval.approved", "success"));
    assert!(has("approval.executed", "success"));
    assert!(rows.iter().any(|r| r["action"] == "proxy.request"
        && r["detail"].as_str().is_some_and(|d| d.contains(&format!("approved in {id}")))));
    // The app heard of the request and the decision.
    let (_, deliveries) = env.api(Method::GET, "/v1/webhook-deliveries", None).await;
    let events: Vec<&str> =
        deliveries["data"].as_array().unwrap().iter().map(|d| d["event_type"].as_str().unwrap()).collect();
    assert!(events.contains(&"approval.requested") && events.contains(&"approval.decided"), "{events:?}");
    // Listing: the app sees it; filters work.
    let (_, listed) = env.api(Method::GET, "/v1/approvals?status=executed", None).await;
    assert_eq!(listed["data"][0]["id"], id.as_str());
    let (_, listed) = env.api(Method::GET, "/v1/approvals?status=pending", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
    let (status, body) = env.api(Method::GET, "/v1/approvals?status=nonsense", None).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_status"));
}

async fn a_denied_call_is_never_sent(env: ConnectEnv) {
    let (grant_id, agent_key) = setup(&env, json!({})).await;
    let id = held_delete(&env, &agent_key, &grant_id).await;
    let approval = format!("/v1/approvals/{id}");
    let (status, denied) = env.api(Method::POST, &format!("{approval}/deny"), Some(json!({ "comment": "no" }))).await;
    assert_eq!((status, denied["status"].as_str()), (StatusCode::OK, Some("denied")), "{denied}");
    let (status, body) = env.api(Method::POST, &format!("{approval}/approve"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "approval_decided"), "{body}");
    let (status, body) = call(&env, &agent_key, Method::POST, &format!("{approval}/execute"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "approval_denied"), "{body}");
    let (status, body) = call(&env, &agent_key, Method::GET, &format!("{approval}/result"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "approval_not_executed"), "{body}");
    assert_eq!(upstream_calls(&env, "DELETE", "/v2/meetings"), 0);
    // A long poll on a decided approval answers at once.
    let (status, seen) = call(&env, &agent_key, Method::GET, &format!("{approval}?wait=25"), None).await;
    assert_eq!((status, seen["status"].as_str()), (StatusCode::OK, Some("denied")));
    let (status, body) = call(&env, &agent_key, Method::GET, &format!("{approval}?wait=26"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_wait"));
}

async fn an_approval_expires_on_the_clock(env: ConnectEnv) {
    let (grant_id, agent_key) = setup(&env, json!({ "expires_in": 120 })).await;
    let id = held_delete(&env, &agent_key, &grant_id).await;
    let approval = format!("/v1/approvals/{id}");
    env.vault.clock.advance(Duration::from_secs(121));
    let (_, seen) = call(&env, &agent_key, Method::GET, &approval, None).await;
    assert_eq!(seen["status"], "expired", "{seen}");
    let (status, body) = env.api(Method::POST, &format!("{approval}/approve"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "approval_expired"), "{body}");
    let (status, body) = call(&env, &agent_key, Method::POST, &format!("{approval}/execute"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "approval_expired"), "{body}");
    // An approved call not executed within its term expires too.
    let id = held_delete(&env, &agent_key, &grant_id).await;
    let approval = format!("/v1/approvals/{id}");
    assert_eq!(env.api(Method::POST, &format!("{approval}/approve"), None).await.0, StatusCode::OK);
    env.vault.clock.advance(Duration::from_secs(121));
    let (status, body) = call(&env, &agent_key, Method::POST, &format!("{approval}/execute"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "approval_expired"), "{body}");
    assert_eq!(upstream_calls(&env, "DELETE", "/v2/meetings"), 0);
    // The sweeper writes what the clock decided, and the listing agrees.
    let (_, listed) = env.api(Method::GET, "/v1/approvals?status=expired", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");
}

async fn nobody_approves_their_own_call_and_n_of_m_counts_distinct_approvers(env: ConnectEnv) {
    let (grant_id, _) = setup(&env, json!({ "approvers": "both", "required_approvals": 3 })).await;
    // The app's own key asks this time: it cannot approve itself.
    let id = held_delete(&env, &env.key, &grant_id).await;
    let approval = format!("/v1/approvals/{id}");
    let (status, body) = env.api(Method::POST, &format!("{approval}/approve"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "self_approval"), "{body}");
    // Another app's key does not even see it.
    let (_, other_key) = env.vault.new_app("other").await;
    let (status, _) = call(&env, &other_key, Method::POST, &format!("{approval}/approve"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&env, &other_key, Method::GET, &approval, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Two operators and the end user: each counts once.
    let app_id = env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
    let mut operators = Vec::new();
    for name in ["alice", "bob"] {
        let body = json!({ "name": name, "scopes": ["approvals:write", "approvals:read"] });
        let (_, minted) = env.vault.admin(Method::POST, &format!("/apps/{app_id}/api-keys"), Some(body)).await;
        operators.push(minted["key"].as_str().unwrap().to_owned());
    }
    let (status, seen) = call(&env, &operators[0], Method::POST, &format!("{approval}/approve"), None).await;
    assert_eq!((status, seen["status"].as_str()), (StatusCode::OK, Some("pending")), "{seen}");
    let (status, body) = call(&env, &operators[0], Method::POST, &format!("{approval}/approve"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_decided"), "{body}");
    let (_, seen) = call(&env, &operators[1], Method::POST, &format!("{approval}/approve"), None).await;
    assert_eq!(seen["status"], "pending", "two operators are not the end user");
    // The end user decides on a page, through a one-use link.
    let (status, link) =
        call(&env, &operators[0], Method::POST, &format!("{approval}/links"), Some(json!({ "approver": "end_user" })))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let url = link["url"].as_str().unwrap().to_owned();
    let page = env.vault.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("DELETE {MEETING}")) && html.contains("the user asked to cancel"), "{html}");
    let decided = env.vault.http.post(&url).form(&[("decision", "approve")]).send().await.unwrap();
    assert_eq!(decided.status(), StatusCode::OK);
    let (_, seen) = env.api(Method::GET, &approval, None).await;
    assert_eq!(seen["status"], "approved", "{seen}");
    assert_eq!(seen["decisions"].as_array().unwrap().len(), 3);
    let again = env.vault.http.post(&url).form(&[("decision", "deny")]).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert_eq!(again.headers()["x-tokenvault-error"], "link_used");
    // Only the caller that asked executes it.
    let (status, body) = call(&env, &operators[0], Method::POST, &format!("{approval}/execute"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = env.api(Method::POST, &format!("{approval}/execute"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(upstream_calls(&env, "DELETE", "/v2/meetings"), 1);
}

async fn a_policy_tightened_after_the_request_refuses_the_execution(env: ConnectEnv) {
    let (grant_id, agent_key) = setup(&env, json!({})).await;
    let id = held_delete(&env, &agent_key, &grant_id).await;
    let approval = format!("/v1/approvals/{id}");
    assert_eq!(env.api(Method::POST, &format!("{approval}/approve"), None).await.0, StatusCode::OK);
    // Now the grant may only be read.
    let policy = json!({ "target_type": "grant", "target_id": grant_id, "rules": { "methods": ["GET"] } });
    assert_eq!(env.api(Method::POST, "/v1/policies", Some(policy)).await.0, StatusCode::CREATED);
    let (status, body) = call(&env, &agent_key, Method::POST, &format!("{approval}/execute"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "policy_denied"), "{body}");
    assert_eq!(upstream_calls(&env, "DELETE", "/v2/meetings"), 0);
    let (_, seen) = call(&env, &agent_key, Method::GET, &approval, None).await;
    assert_eq!((seen["status"].as_str(), seen["error_code"].as_str()), (Some("failed"), Some("policy_denied")));
    let (status, body) = call(&env, &agent_key, Method::POST, &format!("{approval}/execute"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_executed"), "{body}");
}

async fn a_restart_between_approval_and_execution_loses_nothing(env: ConnectEnv) {
    // A body the provider must receive exactly as sent.
    let (grant_id, agent_key) = setup(&env, json!({})).await;
    let policy = json!({ "target_type": "grant", "target_id": grant_id,
        "rules": { "require_approval": { "methods": ["POST"], "paths": ["/v2/echo/**"] } } });
    assert_eq!(env.api(Method::POST, "/v1/policies", Some(policy)).await.0, StatusCode::CREATED);
    let sent = json!({ "topic": "Quarterly review", "duration": 30 });
    let (status, held) =
        call(&env, &agent_key, Method::POST, &format!("/v1/proxy/{grant_id}/v2/echo/items?x=1"), Some(sent.clone()))
            .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let id = held["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(held["request"]["query"], "x=", "query values are sealed, not shown");
    let approval = format!("/v1/approvals/{id}");
    assert_eq!(env.api(Method::POST, &format!("{approval}/approve"), None).await.0, StatusCode::OK);
    assert_eq!(upstream_calls(&env, "POST", "/v2/echo"), 0);
    let held_rows = env.vault.database().column_bytes("SELECT request FROM approvals WHERE request IS NOT NULL").await;
    assert_eq!(held_rows.len(), 1);
    assert!(!String::from_utf8_lossy(&held_rows[0]).contains("Quarterly"), "the held call is sealed at rest");

    let ConnectEnv { vault, fakes, key } = env;
    let vault = vault.restart().await;
    let env = ConnectEnv { vault, fakes, key };
    let (status, echo) = call(&env, &agent_key, Method::POST, &format!("{approval}/execute"), None).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["query"], "x=1");
    assert_eq!(echo["body_len"], serde_json::to_vec(&sent).unwrap().len());
    assert_eq!(echo["headers"]["content-type"], "application/json");
    assert!(echo["headers"]["authorization"].as_str().unwrap().starts_with("Bearer "));
    assert_eq!(upstream_calls(&env, "POST", "/v2/echo"), 1);
    let seen =
        env.fakes.control().requests(Host::ZoomApiAlt).into_iter().chain(env.fakes.control().requests(Host::ZoomApi));
    let seen = seen.filter(|r| r.method == "POST").last().unwrap();
    assert_eq!(serde_json::from_str::<Value>(&seen.body).unwrap(), sent);
    let kept = env.vault.database().column_bytes("SELECT result FROM approvals WHERE result IS NOT NULL").await;
    assert_eq!(kept.len(), 1);
    assert!(!String::from_utf8_lossy(&kept[0]).contains("body_len"), "the kept answer is sealed at rest");
    // The kept answer survives a restart too, sealed.
    let ConnectEnv { vault, fakes, key } = env;
    let vault = vault.restart().await;
    let env = ConnectEnv { vault, fakes, key };
    let (status, again) = call(&env, &agent_key, Method::GET, &format!("{approval}/result"), None).await;
    assert_eq!((status, &again), (StatusCode::OK, &echo));
    let kept = env.vault.database().column_bytes("SELECT result FROM approvals WHERE result IS NOT NULL").await;
    assert!(kept.is_empty(), "a fetched answer is erased");
}
