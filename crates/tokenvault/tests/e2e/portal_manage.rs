//! The portal's management pages over HTTP: an owner registers an agent, delegates a grant to it,
//! mints its key (shown once, and it reaches the delegated grant) and revokes the delegation;
//! the API sees every change. A viewer sees the pages without their forms and is refused at
//! every form (`role_forbidden`). An operator approves and denies held calls as an `operators`
//! approver; the API sees the decisions.

use reqwest::header::{COOKIE, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::portal::{browser, create_operator, get, hidden_csrf, signed_in};

connect_tests!(
    an_owner_manages_agents_and_delegations_from_the_portal,
    a_viewer_sees_the_pages_but_changes_nothing,
    an_operator_approves_and_denies_held_calls_from_the_portal,
    each_operator_counts_once_towards_the_approvals_needed,
    an_owner_adds_and_deletes_a_webhook_endpoint_and_sees_its_deliveries,
    an_owner_adds_and_deletes_managed_secrets_and_policies,
    only_an_owner_rotates_the_data_key_from_the_key_ring,
);

async fn post(env: &ConnectEnv, path: &str, cookie: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    browser().post(env.vault.url(path)).header(COOKIE, cookie).form(fields).send().await.unwrap()
}

async fn html(env: &ConnectEnv, path: &str, cookie: &str) -> String {
    let page = get(&env.vault, path, Some(cookie)).await;
    assert_eq!(page.status(), StatusCode::OK, "{path}");
    page.text().await.unwrap()
}

fn code_in(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\">")).unwrap_or_else(|| panic!("no #{id}: {html}")) + id.len() + 6;
    html[at..].split('<').next().unwrap().to_owned()
}

async fn app_id(env: &ConnectEnv) -> String {
    env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

async fn an_owner_manages_agents_and_delegations_from_the_portal(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let app_id = app_id(&env).await;
    create_operator(&env.vault, "owner@example.com", "owner").await;
    let cookie = signed_in(&env.vault, "owner@example.com").await;
    let agents = format!("/portal/apps/{app_id}/agents");
    let page = html(&env, &agents, &cookie).await;
    let csrf = hidden_csrf(&page);
    assert!(page.contains("id=\"no-agents\"") && page.contains("id=\"create-agent\""));

    // Register an agent: the API lists it.
    let created =
        post(&env, &agents, &cookie, &[("csrf", &csrf), ("name", "assistant"), ("description", "books meetings")])
            .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let detail = location(&created);
    let agent_id = detail.trim_start_matches(&format!("{agents}/")).split('?').next().unwrap().to_owned();
    assert!(agent_id.starts_with("agt_"), "{detail}");
    let (_, listed) = env.api(Method::GET, "/v1/agents", None).await;
    let listed = listed["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((listed[0]["id"].as_str(), listed[0]["name"].as_str()), (Some(agent_id.as_str()), Some("assistant")));
    let page = html(&env, &agents, &cookie).await;
    assert!(page.contains(&format!("data-agent=\"{agent_id}\"")));
    let refused = post(&env, &agents, &cookie, &[("csrf", &csrf), ("name", "")]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // Its page offers the grant; delegate it, narrowed to GET.
    let page = html(&env, &detail, &cookie).await;
    assert!(page.contains("id=\"no-delegations\"") && page.contains(&format!("value=\"{grant_id}\"")));
    let delegations = format!("{agents}/{agent_id}/delegations");
    let delegated = post(
        &env,
        &delegations,
        &cookie,
        &[("csrf", &csrf), ("grant_id", &grant_id), ("methods", "GET"), ("paths", ""), ("proxy_only", "true")],
    )
    .await;
    assert_eq!(delegated.status(), StatusCode::SEE_OTHER, "{}", delegated.text().await.unwrap());
    let (_, seen) = env.api(Method::GET, &format!("/v1/agents/{agent_id}/delegations"), None).await;
    let seen = seen["data"].as_array().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["grant_id"], grant_id.as_str());
    assert_eq!(seen[0]["methods"], json!(["GET"]));
    assert_eq!(seen[0]["proxy_only"], true);
    let delegation_id = seen[0]["id"].as_str().unwrap().to_owned();
    let bad =
        post(&env, &delegations, &cookie, &[("csrf", &csrf), ("grant_id", &grant_id), ("paths", "no-slash")]).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.headers()["x-tokenvault-error"], "invalid_delegation");

    // An agent key, shown once: it reaches the delegated grant.
    let minted = post(&env, &format!("{agents}/{agent_id}/keys"), &cookie, &[("csrf", &csrf), ("name", "a")]).await;
    assert_eq!(minted.status(), StatusCode::CREATED);
    let page = minted.text().await.unwrap();
    let secret = code_in(&page, "new-key-secret");
    assert!(page.contains("data-copy=\"new-key-secret\""));
    let (status, grants) = env.vault.call(Method::GET, "/v1/grants", Some(&secret), None).await;
    assert_eq!(status, StatusCode::OK, "{grants}");
    assert_eq!(grants["data"].as_array().unwrap().len(), 1);
    let page = html(&env, &detail, &cookie).await;
    assert!(!page.contains(&secret), "shown only once");
    assert!(page.contains(&format!("data-delegation=\"{delegation_id}\"")));

    // Revoke the delegation: the API says so, the key reaches nothing, the grant stays.
    let revoked = post(&env, &format!("{delegations}/{delegation_id}/revoke"), &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let (_, seen) = env.api(Method::GET, &format!("/v1/agents/{agent_id}/delegations"), None).await;
    assert!(seen["data"][0]["revoked_at"].is_string(), "{seen}");
    let (_, grants) = env.vault.call(Method::GET, "/v1/grants", Some(&secret), None).await;
    assert!(grants["data"].as_array().unwrap().is_empty(), "{grants}");
    assert_eq!(env.grant(&grant_id).await["status"], "active");
    // Another agent's delegation is not this agent's to revoke.
    let other = post(&env, &agents, &cookie, &[("csrf", &csrf), ("name", "other")]).await;
    let other_id = location(&other).trim_start_matches(&format!("{agents}/")).split('?').next().unwrap().to_owned();
    let wrong =
        post(&env, &format!("{agents}/{other_id}/delegations/{delegation_id}/revoke"), &cookie, &[("csrf", &csrf)])
            .await;
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);

    let missing = get(&env.vault, &format!("{agents}/agt_00000000000000000000000000000000"), Some(&cookie)).await;
    assert!(matches!(missing.status(), StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST), "{}", missing.status());
}

async fn a_viewer_sees_the_pages_but_changes_nothing(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let app_id = app_id(&env).await;
    let (_, agent) = env.api(Method::POST, "/v1/agents", Some(json!({ "name": "assistant" }))).await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    create_operator(&env.vault, "viewer@example.com", "viewer").await;
    let viewer = signed_in(&env.vault, "viewer@example.com").await;
    let agents = format!("/portal/apps/{app_id}/agents");
    let page = html(&env, &agents, &viewer).await;
    let csrf = hidden_csrf(&page);
    assert!(!page.contains("id=\"create-agent\"") && page.contains(&format!("data-agent=\"{agent_id}\"")));
    let page = html(&env, &format!("{agents}/{agent_id}"), &viewer).await;
    assert!(!page.contains("id=\"delegate\"") && !page.contains("id=\"mint-agent-key\""));
    for (path, fields) in [
        (agents.clone(), vec![("name", "nope")]),
        (format!("{agents}/{agent_id}/delegations"), vec![("grant_id", grant_id.as_str())]),
        (format!("{agents}/{agent_id}/keys"), vec![("name", "k")]),
        (format!("{agents}/{agent_id}/delegations/dlg_00000000000000000000000000000000/revoke"), vec![]),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields.iter().copied());
        let refused = post(&env, &path, &viewer, &form).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(refused.headers()["x-tokenvault-error"], "role_forbidden", "{path}");
    }
    let (_, listed) = env.api(Method::GET, "/v1/agents", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "nothing was created");
    let (_, seen) = env.api(Method::GET, &format!("/v1/agents/{agent_id}/delegations"), None).await;
    assert!(seen["data"].as_array().unwrap().is_empty());
}

/// Zoom connected; an agent with a delegation of the grant and a key; a policy that holds
/// `DELETE /v2/meetings/*` for the operators to approve.
async fn held_call_setup(env: &ConnectEnv, required: u32) -> (String, String) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (_, agent) = env.api(Method::POST, "/v1/agents", Some(json!({ "name": "assistant" }))).await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    let (status, minted) = env.api(Method::POST, &format!("/v1/agents/{agent_id}/keys"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let (status, body) = env
        .api(Method::POST, &format!("/v1/agents/{agent_id}/delegations"), Some(json!({ "grant_id": grant_id })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let rule = json!({ "methods": ["DELETE"], "paths": ["/v2/meetings/*"], "approvers": "operators", "required_approvals": required });
    let policy = json!({ "target_type": "app", "rules": { "require_approval": rule } });
    let (status, body) = env.api(Method::POST, "/v1/policies", Some(policy)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (grant_id, minted["key"].as_str().unwrap().to_owned())
}

async fn held_delete(env: &ConnectEnv, key: &str, grant_id: &str, meeting: &str) -> String {
    let response = env
        .vault
        .http
        .delete(env.vault.url(&format!("/v1/proxy/{grant_id}/v2/meetings/{meeting}")))
        .bearer_auth(key)
        .header("x-actor-type", "ai_agent")
        .header("x-actor-reason", "the user asked to cancel the meeting")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    body["approval_id"].as_str().unwrap().to_owned()
}

async fn an_operator_approves_and_denies_held_calls_from_the_portal(env: ConnectEnv) {
    let (grant_id, agent_key) = held_call_setup(&env, 1).await;
    let first = held_delete(&env, &agent_key, &grant_id, "111").await;
    let second = held_delete(&env, &agent_key, &grant_id, "222").await;
    let app_id = app_id(&env).await;
    create_operator(&env.vault, "owner@example.com", "owner").await;
    create_operator(&env.vault, "viewer@example.com", "viewer").await;
    let owner = signed_in(&env.vault, "owner@example.com").await;
    let viewer = signed_in(&env.vault, "viewer@example.com").await;
    let approvals = format!("/portal/apps/{app_id}/approvals");
    let page = html(&env, &approvals, &owner).await;
    let csrf = hidden_csrf(&page);
    for id in [&first, &second] {
        assert!(page.contains(&format!("data-approval=\"{id}\"")), "{page}");
    }
    assert!(page.contains("DELETE /v2/meetings/111") && page.contains("the user asked to cancel the meeting"));

    // A viewer sees the calls, not the forms, and cannot decide.
    let seen = html(&env, &approvals, &viewer).await;
    assert!(seen.contains(&format!("data-approval=\"{first}\"")) && !seen.contains("/approve\""));
    let viewer_csrf = hidden_csrf(&seen);
    for decision in ["approve", "deny"] {
        let refused = post(&env, &format!("{approvals}/{first}/{decision}"), &viewer, &[("csrf", &viewer_csrf)]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(refused.headers()["x-tokenvault-error"], "role_forbidden");
    }

    // The owner approves one (as an operator) and denies the other; the API sees both.
    let approved =
        post(&env, &format!("{approvals}/{first}/approve"), &owner, &[("csrf", &csrf), ("comment", "fine")]).await;
    assert_eq!(approved.status(), StatusCode::SEE_OTHER, "{}", approved.text().await.unwrap());
    let (_, view) = env.api(Method::GET, &format!("/v1/approvals/{first}"), None).await;
    assert_eq!(view["status"], "approved", "{view}");
    assert_eq!(view["decisions"][0]["approver"], "operator");
    assert_eq!(view["decisions"][0]["comment"], "fine");
    let denied = post(&env, &format!("{approvals}/{second}/deny"), &owner, &[("csrf", &csrf)]).await;
    assert_eq!(denied.status(), StatusCode::SEE_OTHER);
    let (_, view) = env.api(Method::GET, &format!("/v1/approvals/{second}"), None).await;
    assert_eq!(view["status"], "denied", "{view}");
    // Decided calls leave the page; deciding again is a conflict.
    let page = html(&env, &format!("{approvals}?done=approved"), &owner).await;
    assert!(page.contains("id=\"no-approvals\""), "{page}");
    let again = post(&env, &format!("{approvals}/{first}/deny"), &owner, &[("csrf", &csrf)]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(again.headers()["x-tokenvault-error"], "approval_decided");
    // The agent runs the approved call.
    let (status, _) =
        env.vault.call(Method::POST, &format!("/v1/approvals/{first}/execute"), Some(&agent_key), None).await;
    assert!(status.is_success(), "{status}");
}

async fn each_operator_counts_once_towards_the_approvals_needed(env: ConnectEnv) {
    let (grant_id, agent_key) = held_call_setup(&env, 2).await;
    let id = held_delete(&env, &agent_key, &grant_id, "333").await;
    let app_id = app_id(&env).await;
    create_operator(&env.vault, "owner@example.com", "owner").await;
    create_operator(&env.vault, "admin@example.com", "admin").await;
    let owner = signed_in(&env.vault, "owner@example.com").await;
    let admin = signed_in(&env.vault, "admin@example.com").await;
    let approve = format!("/portal/apps/{app_id}/approvals/{id}/approve");
    let owner_csrf = hidden_csrf(&html(&env, &format!("/portal/apps/{app_id}/approvals"), &owner).await);
    let admin_csrf = hidden_csrf(&html(&env, &format!("/portal/apps/{app_id}/approvals"), &admin).await);
    let first = post(&env, &approve, &owner, &[("csrf", &owner_csrf)]).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert!(location(&first).ends_with("?done=recorded"), "{}", location(&first));
    let (_, view) = env.api(Method::GET, &format!("/v1/approvals/{id}"), None).await;
    assert_eq!(view["status"], "pending", "one of two: {view}");
    let again = post(&env, &approve, &owner, &[("csrf", &owner_csrf)]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(again.headers()["x-tokenvault-error"], "already_decided");
    assert_eq!(post(&env, &approve, &admin, &[("csrf", &admin_csrf)]).await.status(), StatusCode::SEE_OTHER);
    let (_, view) = env.api(Method::GET, &format!("/v1/approvals/{id}"), None).await;
    assert_eq!(view["status"], "approved", "{view}");
    let by: Vec<&str> = view["decisions"].as_array().unwrap().iter().map(|d| d["by"].as_str().unwrap()).collect();
    assert!(by.len() == 2 && by[0] != by[1] && by.iter().all(|b| b.starts_with("opr_")), "each operator: {by:?}");
}

async fn an_owner_adds_and_deletes_a_webhook_endpoint_and_sees_its_deliveries(env: ConnectEnv) {
    env.configure_zoom().await;
    let app_id = app_id(&env).await;
    create_operator(&env.vault, "owner@example.com", "owner").await;
    create_operator(&env.vault, "viewer@example.com", "viewer").await;
    let owner = signed_in(&env.vault, "owner@example.com").await;
    let viewer = signed_in(&env.vault, "viewer@example.com").await;
    let webhooks = format!("/portal/apps/{app_id}/webhooks");
    let page = html(&env, &webhooks, &owner).await;
    let csrf = hidden_csrf(&page);
    assert!(page.contains("id=\"no-endpoints\"") && page.contains("id=\"create-webhook\""));

    // Added: the signing secret is on the answer, once; the API lists the endpoint.
    let fields =
        [("csrf", csrf.as_str()), ("url", "http://127.0.0.1:9/hook"), ("events", "grant.connected grant.revoked")];
    let created = post(&env, &webhooks, &owner, &fields).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let page = created.text().await.unwrap();
    let secret = code_in(&page, "new-webhook-secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(page.contains("data-copy=\"new-webhook-secret\""));
    let (_, listed) = env.api(Method::GET, "/v1/webhook-endpoints", None).await;
    let listed = listed["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["url"], "http://127.0.0.1:9/hook");
    assert_eq!(listed[0]["events"], json!(["grant.connected", "grant.revoked"]));
    let endpoint_id = listed[0]["id"].as_str().unwrap().to_owned();
    let bad =
        post(&env, &webhooks, &owner, &[("csrf", &csrf), ("url", "http://127.0.0.1:9/x"), ("events", "nope")]).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.headers()["x-tokenvault-error"], "invalid_event_types");

    // A connection makes a delivery; the page shows it, never the secret.
    env.connect_ok("user-1", "zoom").await;
    let page = html(&env, &webhooks, &owner).await;
    assert!(!page.contains(&secret), "shown only once");
    assert!(page.contains(&format!("data-endpoint=\"{endpoint_id}\"")) && page.contains("data-delivery=\""), "{page}");
    assert!(page.contains("grant.connected"));
    let delivery_id = page.split("data-delivery=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();

    // Rotate the secret: the new one is on the answer, once; retry the (failing) delivery.
    let rotated = post(&env, &format!("{webhooks}/{endpoint_id}/rotate-secret"), &owner, &[("csrf", &csrf)]).await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let new_secret = code_in(&rotated.text().await.unwrap(), "new-webhook-secret");
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    let (_, listed) = env.api(Method::GET, "/v1/webhook-endpoints", None).await;
    assert!(listed["data"][0]["previous_secret_expires_at"].is_string(), "{listed}");
    let retried = post(&env, &format!("{webhooks}/deliveries/{delivery_id}/retry"), &owner, &[("csrf", &csrf)]).await;
    assert_eq!(retried.status(), StatusCode::SEE_OTHER);
    assert!(retried.headers()["location"].to_str().unwrap().ends_with("done=retried"));

    // A viewer sees it all without forms and cannot add or delete.
    let seen = html(&env, &webhooks, &viewer).await;
    assert!(!seen.contains("id=\"create-webhook\"") && !seen.contains("/delete\""));
    let viewer_csrf = hidden_csrf(&seen);
    for (path, fields) in [
        (webhooks.clone(), vec![("url", "http://127.0.0.1:9/other")]),
        (format!("{webhooks}/{endpoint_id}/delete"), vec![]),
        (format!("{webhooks}/{endpoint_id}/rotate-secret"), vec![]),
        (format!("{webhooks}/deliveries/{delivery_id}/retry"), vec![]),
    ] {
        let mut form = vec![("csrf", viewer_csrf.as_str())];
        form.extend(fields.iter().copied());
        let refused = post(&env, &path, &viewer, &form).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(refused.headers()["x-tokenvault-error"], "role_forbidden");
    }

    let deleted = post(&env, &format!("{webhooks}/{endpoint_id}/delete"), &owner, &[("csrf", &csrf)]).await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    let (_, listed) = env.api(Method::GET, "/v1/webhook-endpoints", None).await;
    assert!(listed["data"].as_array().unwrap().is_empty(), "{listed}");
}

async fn an_owner_adds_and_deletes_managed_secrets_and_policies(env: ConnectEnv) {
    let app_id = app_id(&env).await;
    create_operator(&env.vault, "owner@example.com", "owner").await;
    create_operator(&env.vault, "viewer@example.com", "viewer").await;
    let owner = signed_in(&env.vault, "owner@example.com").await;
    let viewer = signed_in(&env.vault, "viewer@example.com").await;
    let secrets = format!("/portal/apps/{app_id}/secrets");
    let page = html(&env, &secrets, &owner).await;
    let csrf = hidden_csrf(&page);
    assert!(page.contains("id=\"no-secrets\"") && page.contains("id=\"create-secret\""));

    // A managed secret: write-only; the API lists it.
    let base = env.fakes.urls().evil.trim_end_matches('/').to_owned();
    let fields = [
        ("csrf", csrf.as_str()),
        ("name", "partner api"),
        ("end_user_id", ""),
        ("style", "header"),
        ("header_name", "X-Api-Key"),
        ("username", "ignored"),
        ("query_parameter", ""),
        ("secret", "ms-portal-value-1"),
        ("base_urls", &base),
    ];
    let created = post(&env, &secrets, &owner, &fields).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER, "{}", created.text().await.unwrap());
    let (_, listed) = env.api(Method::GET, "/v1/managed-secrets", None).await;
    let listed = listed["data"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((listed[0]["style"].as_str(), listed[0]["header_name"].as_str()), (Some("header"), Some("x-api-key")));
    assert!(listed[0]["username"].is_null(), "only the chosen style's parameter is sent");
    let secret_id = listed[0]["id"].as_str().unwrap().to_owned();
    let page = html(&env, &secrets, &owner).await;
    assert!(page.contains(&format!("data-secret=\"{secret_id}\"")) && !page.contains("ms-portal-value-1"));
    let mut bad = fields;
    bad[3] = ("style", "carrier-pigeon");
    let refused = post(&env, &secrets, &owner, &bad).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // A policy on the secret, from JSON rules; the API lists it with its rules.
    let policies = format!("/portal/apps/{app_id}/policies");
    let page = html(&env, &policies, &owner).await;
    assert!(page.contains("id=\"no-policies\"") && page.contains(&format!("value=\"grant:{secret_id}\"")));
    let rules = r#"{"methods": ["GET"], "token_retrieval": false}"#;
    let target = format!("grant:{secret_id}");
    let created = post(&env, &policies, &owner, &[("csrf", &csrf), ("target", &target), ("rules", rules)]).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER, "{}", created.text().await.unwrap());
    let created =
        post(&env, &policies, &owner, &[("csrf", &csrf), ("target", "app"), ("rules", r#"{"paths": ["/v2/**"]}"#)])
            .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let (_, listed) = env.api(Method::GET, "/v1/policies", None).await;
    let listed = listed["data"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let on_secret = listed.iter().find(|p| p["target_type"] == "grant").unwrap();
    assert_eq!(on_secret["target_id"], secret_id.as_str());
    assert_eq!(on_secret["rules"], json!({ "methods": ["GET"], "token_retrieval": false }));
    let policy_id = on_secret["id"].as_str().unwrap().to_owned();
    let page = html(&env, &policies, &owner).await;
    assert!(page.contains(&format!("data-policy=\"{policy_id}\"")) && page.contains("token_retrieval"));
    for (rules, code) in [
        ("not json", "invalid_rules"),
        (r#"{"colour": "blue"}"#, "invalid_rules"),
        (r#"{"require_approval": {"approvers": "nobody"}}"#, "invalid_policy"),
    ] {
        let refused = post(&env, &policies, &owner, &[("csrf", &csrf), ("target", "app"), ("rules", rules)]).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{rules}");
        if !code.is_empty() {
            assert_eq!(refused.headers()["x-tokenvault-error"], code, "{rules}");
        }
    }

    // A viewer sees both pages without forms and cannot change either.
    for path in [&secrets, &policies] {
        let seen = html(&env, path, &viewer).await;
        assert!(
            !seen.contains("id=\"create-secret\"")
                && !seen.contains("id=\"create-policy\"")
                && !seen.contains("/delete\"")
        );
    }
    let viewer_csrf = hidden_csrf(&html(&env, &secrets, &viewer).await);
    for (path, fields) in [
        (secrets.clone(), vec![("name", "n"), ("style", "bearer"), ("secret", "s"), ("base_urls", base.as_str())]),
        (format!("{secrets}/{secret_id}/delete"), vec![]),
        (policies.clone(), vec![("target", "app"), ("rules", "{}")]),
        (format!("{policies}/{policy_id}/delete"), vec![]),
    ] {
        let mut form = vec![("csrf", viewer_csrf.as_str())];
        form.extend(fields.iter().copied());
        let refused = post(&env, &path, &viewer, &form).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(refused.headers()["x-tokenvault-error"], "role_forbidden");
    }

    // Deleted: the API no longer has them.
    let deleted = post(&env, &format!("{policies}/{policy_id}/delete"), &owner, &[("csrf", &csrf)]).await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    let (_, listed) = env.api(Method::GET, "/v1/policies", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    let deleted = post(&env, &format!("{secrets}/{secret_id}/delete"), &owner, &[("csrf", &csrf)]).await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    let (status, _) = env.api(Method::GET, &format!("/v1/managed-secrets/{secret_id}"), None).await;
    let (_, listed) = env.api(Method::GET, "/v1/managed-secrets", None).await;
    let still_active =
        listed["data"].as_array().unwrap().iter().any(|s| s["id"] == secret_id.as_str() && s["status"] == "active");
    assert!(status == StatusCode::NOT_FOUND || !still_active, "{status} {listed}");
}

async fn only_an_owner_rotates_the_data_key_from_the_key_ring(env: ConnectEnv) {
    create_operator(&env.vault, "owner@example.com", "owner").await;
    create_operator(&env.vault, "admin@example.com", "admin").await;
    create_operator(&env.vault, "viewer@example.com", "viewer").await;
    let owner = signed_in(&env.vault, "owner@example.com").await;
    let (_, before) = env.vault.admin(Method::GET, "/keys", None).await;
    let before = before["data"].as_array().unwrap().clone();
    let active = before.iter().find(|k| k["state"] == "active").unwrap()["id"].as_u64().unwrap();
    let page = html(&env, "/portal/keys", &owner).await;
    assert!(page.contains(&format!("data-data-key=\"{active}\"")) && page.contains("id=\"rotate-data-key\""));
    assert!(page.contains("tokenvault keys rotate"));
    let csrf = hidden_csrf(&page);

    // An admin and a viewer see the key ring, without the form, and are refused.
    for email in ["admin@example.com", "viewer@example.com"] {
        let cookie = signed_in(&env.vault, email).await;
        let page = html(&env, "/portal/keys", &cookie).await;
        assert!(page.contains(&format!("data-data-key=\"{active}\"")) && !page.contains("id=\"rotate-data-key\""));
        let refused = post(&env, "/portal/keys/rotate", &cookie, &[("csrf", &hidden_csrf(&page))]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{email}");
        assert_eq!(refused.headers()["x-tokenvault-error"], "role_forbidden");
    }
    let (_, unchanged) = env.vault.admin(Method::GET, "/keys", None).await;
    assert_eq!(unchanged["data"].as_array().unwrap().len(), before.len());

    // The owner rotates: a new active key, and the API's secrets still work.
    let rotated = post(&env, "/portal/keys/rotate", &owner, &[("csrf", &csrf)]).await;
    assert_eq!(rotated.status(), StatusCode::SEE_OTHER, "{}", rotated.text().await.unwrap());
    let (_, after) = env.vault.admin(Method::GET, "/keys", None).await;
    let now_active = after["data"].as_array().unwrap().iter().find(|k| k["state"] == "active").unwrap()["id"].as_u64();
    assert!(now_active.is_some_and(|id| id > active), "{after}");
    assert_eq!(env.api(Method::GET, "/v1/app", None).await.0, StatusCode::OK);
    let page = html(&env, "/portal/keys?done=rotated", &owner).await;
    assert!(page.contains("id=\"notice\""));
}
