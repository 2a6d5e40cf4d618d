//! The JSON control API, as a test in another process would use it.

mod common;

use common::*;
use serde_json::{Value, json};
use tokenvault_fakes::Fakes;

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = http().request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    json(request.send().await.unwrap()).await
}

async fn exchange(fakes: &Fakes, code: &str) -> reqwest::Response {
    http()
        .post(format!("{}/oauth/token", fakes.urls().zoom_oauth))
        .header("authorization", basic("c", "s"))
        .form(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn drive_a_zoom_flow_through_the_control_api() {
    let fakes = Fakes::start().await.unwrap();
    let ctl = fakes.control_url().to_owned();
    let (status, urls) = call(reqwest::Method::GET, format!("{ctl}/_fake/urls"), None).await;
    assert_eq!(status, 200);
    assert_eq!(urls["zoom_oauth"], fakes.urls().zoom_oauth.as_str());
    assert_eq!(urls["control"], ctl.as_str());

    let client = json!({"provider": "zoom", "client_id": "c", "client_secret": "s", "redirect_uris": [CALLBACK], "scopes": ["user:read:user"]});
    assert_eq!(call(reqwest::Method::POST, format!("{ctl}/_fake/clients"), Some(client)).await.0, 204);
    let user =
        json!({"provider": "zoom", "id": "u-9", "account_id": "acc-9", "name": "Nine Z", "email": "n@example.com"});
    assert_eq!(call(reqwest::Method::POST, format!("{ctl}/_fake/users"), Some(user)).await.0, 204);
    let variant = json!({"name": "access_token_lifetime", "value": {"provider": "zoom", "seconds": 60}});
    assert_eq!(call(reqwest::Method::POST, format!("{ctl}/_fake/variant"), Some(variant)).await.0, 204);
    let fault = json!({"provider": "zoom", "endpoint": "token", "fault": {"type": "status", "status": 429, "body": "slow down", "retry_after": 2}, "times": 1});
    assert_eq!(call(reqwest::Method::POST, format!("{ctl}/_fake/faults"), Some(fault)).await.0, 204);

    let code = code_from(&with_query(
        &format!("{}/oauth/authorize", fakes.urls().zoom_oauth),
        &[("response_type", "code"), ("client_id", "c"), ("redirect_uri", CALLBACK)],
    ))
    .await;
    assert_eq!(exchange(&fakes, &code).await.status(), 429);
    let (status, body) = json(exchange(&fakes, &code).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 60);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (_, me) =
        json(http().get(format!("{}/v2/users/me", fakes.urls().zoom_api)).bearer_auth(&access).send().await.unwrap())
            .await;
    assert_eq!(me["id"], "u-9");

    let active = |token: String| json!({"provider": "zoom", "token": token, "kind": "access"});
    let (_, result) =
        call(reqwest::Method::POST, format!("{ctl}/_fake/tokens/active"), Some(active(access.clone()))).await;
    assert_eq!(result["active"], true);
    let (_, clock) =
        call(reqwest::Method::POST, format!("{ctl}/_fake/clock/advance"), Some(json!({"seconds": 61}))).await;
    assert!(clock["now"].as_u64().is_some());
    let (_, result) = call(reqwest::Method::POST, format!("{ctl}/_fake/tokens/active"), Some(active(access))).await;
    assert_eq!(result["active"], false);

    let (_, count) = call(reqwest::Method::GET, format!("{ctl}/_fake/calls?provider=zoom&endpoint=token"), None).await;
    assert_eq!(count["count"], 2);
    let (_, all) = call(reqwest::Method::GET, format!("{ctl}/_fake/calls"), None).await;
    assert_eq!(all["hosts"]["zoom_oauth"], 3);
    let (_, log) = call(reqwest::Method::GET, format!("{ctl}/_fake/token_requests?provider=zoom"), None).await;
    assert_eq!(log[0]["client_auth"], "basic");
    assert_eq!(log[0]["outcome_status"], 200);

    let deauth = json!({"user_id": "u-9", "account_id": "acc-9", "client_id": "c", "secret": "whsec", "timestamp": "1700000000"});
    let (_, event) = call(reqwest::Method::POST, format!("{ctl}/_fake/zoom/deauthorization_event"), Some(deauth)).await;
    let raw = event["raw"].as_str().unwrap();
    assert_eq!(event["headers"]["x-zm-signature"], tokenvault_fakes::zoom_sign("whsec", "1700000000", raw.as_bytes()));
    assert_eq!(event["event"]["payload"]["user_id"], "u-9");

    assert_eq!(call(reqwest::Method::POST, format!("{ctl}/_fake/reset_counters"), None).await.0, 204);
    let (_, count) = call(reqwest::Method::GET, format!("{ctl}/_fake/calls?provider=zoom&endpoint=token"), None).await;
    assert_eq!(count["count"], 0);
    let (status, _) = call(reqwest::Method::POST, format!("{ctl}/_fake/variant"), Some(json!({"name": "nope"}))).await;
    assert!(status >= 400);
}
