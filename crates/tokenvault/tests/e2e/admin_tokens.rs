//! Issue 9: minted admin tokens can be listed (never their secrets), minted and revoked over the
//! admin API; a revoked token is refused from the next call on.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{ADMIN_TOKEN, TestVault, assert_error_shape};

on_both_backends!(
    minted_tokens_are_listed_without_their_secrets,
    a_revoked_token_is_refused_at_once_and_another_keeps_working,
    revoking_an_unknown_or_malformed_id_is_a_json_error,
    app_keys_cannot_manage_admin_tokens,
);

/// Mints a token over the API with `bearer`; returns (id, secret).
async fn mint(vault: &TestVault, bearer: &str, name: &str) -> (String, String) {
    let (status, body) =
        vault.call(Method::POST, "/admin/v1/admin-tokens", Some(bearer), Some(json!({ "name": name }))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("tva_"), "{body}");
    assert_eq!(body["name"], name);
    assert!(body["revoked_at"].is_null(), "{body}");
    (body["id"].as_str().unwrap().to_owned(), token)
}

async fn list(vault: &TestVault, bearer: &str) -> (Vec<Value>, String) {
    let response =
        vault.http.get(vault.url("/admin/v1/admin-tokens")).bearer_auth(bearer).send().await.expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let page: Value = serde_json::from_str(&text).unwrap();
    assert!(page["next_cursor"].is_null(), "{page}");
    (page["data"].as_array().unwrap().clone(), text)
}

async fn minted_tokens_are_listed_without_their_secrets(vault: TestVault) {
    let (empty, _) = list(&vault, ADMIN_TOKEN).await;
    assert!(empty.is_empty(), "the configured token is not listed: {empty:?}");

    let from_cli = vault.vault.mint_admin_token("bootstrap").await.unwrap();
    let cli_secret = secrecy::ExposeSecret::expose_secret(&from_cli.secret).to_owned();
    let (api_id, api_secret) = mint(&vault, ADMIN_TOKEN, "ops").await;
    // A minted token can mint and list too.
    let (status, _) = vault.call(Method::GET, "/admin/v1/admin-tokens", Some(&api_secret), None).await;
    assert_eq!(status, StatusCode::OK);

    let (tokens, text) = list(&vault, &cli_secret).await;
    let summary: Vec<(&str, &str)> =
        tokens.iter().map(|t| (t["id"].as_str().unwrap(), t["name"].as_str().unwrap())).collect();
    assert_eq!(summary, [(from_cli.info.id.as_str(), "bootstrap"), (api_id.as_str(), "ops")]);
    for token in &tokens {
        let mut fields: Vec<&str> = token.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["created_at", "id", "name", "revoked_at"], "{token}");
        assert!(token["revoked_at"].is_null());
        assert!(token["created_at"].as_str().unwrap().ends_with('Z'), "{token}");
    }
    for secret in [&cli_secret, &api_secret] {
        assert!(!text.contains(secret.as_str()), "a listing shows a secret");
        // Not even the secret part after the id.
        assert!(!text.contains(&secret[37..]), "a listing shows a secret");
    }
}

async fn a_revoked_token_is_refused_at_once_and_another_keeps_working(vault: TestVault) {
    let (doomed_id, doomed) = mint(&vault, ADMIN_TOKEN, "laptop").await;
    let (_, kept) = mint(&vault, ADMIN_TOKEN, "ci").await;
    let (status, _) = vault.call(Method::GET, "/admin/v1/apps", Some(&doomed), None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) =
        vault.call(Method::DELETE, &format!("/admin/v1/admin-tokens/{doomed_id}"), Some(&kept), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (status, body) = vault.call(Method::GET, "/admin/v1/apps", Some(&doomed), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(assert_error_shape(status, &body), "invalid_admin_token");
    let (status, body) = vault.call(Method::GET, "/admin/v1/admin-tokens", Some(&doomed), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = vault.call(Method::GET, "/admin/v1/apps", Some(&kept), None).await;
    assert_eq!(status, StatusCode::OK, "another token keeps working");

    let (tokens, _) = list(&vault, &kept).await;
    let revoked = tokens.iter().find(|t| t["id"] == doomed_id.as_str()).unwrap();
    let revoked_at = revoked["revoked_at"].as_str().expect("revoked_at is set").to_owned();
    assert!(tokens.iter().find(|t| t["id"] != doomed_id.as_str()).unwrap()["revoked_at"].is_null());

    // Revoking again is harmless and keeps the first revocation time.
    vault.clock.advance(std::time::Duration::from_secs(60));
    let (status, _) =
        vault.call(Method::DELETE, &format!("/admin/v1/admin-tokens/{doomed_id}"), Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (tokens, _) = list(&vault, &kept).await;
    assert_eq!(tokens.iter().find(|t| t["id"] == doomed_id.as_str()).unwrap()["revoked_at"], revoked_at.as_str());

    // A token can revoke itself; the configured token still works afterwards.
    let kept_id = tokens.iter().find(|t| t["id"] != doomed_id.as_str()).unwrap()["id"].as_str().unwrap().to_owned();
    let (status, _) = vault.call(Method::DELETE, &format!("/admin/v1/admin-tokens/{kept_id}"), Some(&kept), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = vault.call(Method::GET, "/admin/v1/apps", Some(&kept), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = vault.call(Method::GET, "/admin/v1/apps", Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
}

async fn revoking_an_unknown_or_malformed_id_is_a_json_error(vault: TestVault) {
    let unknown = "adm_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e";
    let (status, body) =
        vault.call(Method::DELETE, &format!("/admin/v1/admin-tokens/{unknown}"), Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(assert_error_shape(status, &body), "not_found");
    for malformed in ["nope", "key_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e"] {
        let (status, body) =
            vault.call(Method::DELETE, &format!("/admin/v1/admin-tokens/{malformed}"), Some(ADMIN_TOKEN), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}");
        assert_eq!(assert_error_shape(status, &body), "invalid_id");
    }
    let (status, body) =
        vault.call(Method::POST, "/admin/v1/admin-tokens", Some(ADMIN_TOKEN), Some(json!({ "name": " " }))).await;
    assert_eq!(assert_error_shape(status, &body), "invalid_name");
    let (status, body) =
        vault.call(Method::POST, "/admin/v1/admin-tokens", Some(ADMIN_TOKEN), Some(json!({ "secret": "x" }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // The name is optional.
    let (status, body) = vault.call(Method::POST, "/admin/v1/admin-tokens", Some(ADMIN_TOKEN), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "default");
}

async fn app_keys_cannot_manage_admin_tokens(vault: TestVault) {
    let (_, key) = vault.new_app("acme").await;
    let (id, _) = mint(&vault, ADMIN_TOKEN, "ops").await;
    for (method, path) in [
        (Method::GET, "/admin/v1/admin-tokens".to_owned()),
        (Method::POST, "/admin/v1/admin-tokens".to_owned()),
        (Method::DELETE, format!("/admin/v1/admin-tokens/{id}")),
    ] {
        let (status, body) = vault.call(method.clone(), &path, Some(&key), Some(json!({}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(assert_error_shape(status, &body), "invalid_admin_token");
    }
    let (tokens, _) = list(&vault, ADMIN_TOKEN).await;
    assert!(tokens[0]["revoked_at"].is_null());
}
