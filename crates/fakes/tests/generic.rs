//! Generic standards-compliant OAuth 2.0 / OIDC server over real HTTP.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tokenvault_fakes::{ConsentMode, Fakes, IssResponse, Provider, Variant, pkce_s256};

const REDIRECT: &str = "http://127.0.0.1:1/generic/cb";
/// Needs form-encoding inside Basic (RFC 6749 §2.3.1).
const SECRET: &str = "s3:cr%t+v@lue";

async fn setup() -> Fakes {
    let fakes = start().await;
    fakes.control().register_client(
        Provider::Generic,
        registration("gen-id", SECRET, REDIRECT, &["openid", "profile", "email", "offline_access", "read"]),
    );
    fakes
}

fn authorize_url(fakes: &Fakes, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", "gen-id"),
        ("redirect_uri", REDIRECT),
        ("state", "g-state"),
        ("scope", "openid email"),
    ];
    pairs.extend_from_slice(extra);
    with_query(&format!("{}/authorize", fakes.urls().generic_issuer), &pairs)
}

fn s256_extra(challenge: &str) -> [(&str, &str); 2] {
    [("code_challenge", challenge), ("code_challenge_method", "S256")]
}

async fn token(fakes: &Fakes, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http()
        .post(format!("{}/token", fakes.urls().generic_issuer))
        .header("authorization", basic("gen-id", SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    json(response).await
}

async fn connect(fakes: &Fakes) -> Value {
    let challenge = pkce_s256(VERIFIER);
    let code = code_from(&authorize_url(fakes, &s256_extra(&challenge))).await;
    let (status, body) = token(
        fakes,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn discovery_at_both_well_known_locations() {
    let fakes = setup().await;
    let issuer = &fakes.urls().generic_issuer;
    assert!(issuer.ends_with("/realms/test"));
    let base = issuer.strip_suffix("/realms/test").unwrap();
    for url in [
        format!("{base}/.well-known/oauth-authorization-server/realms/test"),
        format!("{issuer}/.well-known/openid-configuration"),
    ] {
        let (status, meta) = json(http().get(&url).send().await.unwrap()).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(meta["issuer"], issuer.as_str());
        assert_eq!(meta["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(meta["authorization_endpoint"], format!("{issuer}/authorize"));
        assert_eq!(meta["revocation_endpoint"], format!("{issuer}/revoke"));
        assert_eq!(meta["userinfo_endpoint"], format!("{issuer}/userinfo"));
        assert_eq!(meta["code_challenge_methods_supported"], serde_json::json!(["S256", "plain"]));
        assert_eq!(
            meta["token_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post"])
        );
        assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
        assert!(meta["scopes_supported"].as_array().unwrap().iter().any(|s| s == "read"));
    }
    let control = fakes.control();
    control.set_variant(Variant::GenericWrongIssuerInMetadata(true));
    control.set_variant(Variant::GenericCodeChallengeMethods(None));
    let (_, meta) = json(http().get(format!("{issuer}/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_ne!(meta["issuer"], issuer.as_str());
    assert!(meta.get("code_challenge_methods_supported").is_none());
}

#[tokio::test]
async fn full_flow_with_iss_pkce_and_basic_secret_needing_encoding() {
    let fakes = setup().await;
    let issuer = fakes.urls().generic_issuer.clone();
    let challenge = pkce_s256(VERIFIER);
    let location = authorize(&authorize_url(&fakes, &s256_extra(&challenge))).await;
    assert_eq!(param(&location, "iss").as_deref(), Some(issuer.as_str()));
    assert_eq!(param(&location, "state").as_deref(), Some("g-state"));
    let code = param(&location, "code").unwrap();
    let (status, body) = token(
        &fakes,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid email");
    assert!(body["refresh_token"].is_string());
    assert!(body["id_token"].is_string());
    let (status, info) = json(
        http()
            .get(format!("{issuer}/userinfo"))
            .bearer_auth(body["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(info["sub"], "user-0001");
    assert_eq!(info["email"], "gene@example.com");
    assert!(info["name"].is_string());
    assert_eq!(fakes.control().token_requests(Provider::Generic)[0].client_auth, "basic");
}

#[tokio::test]
async fn basic_without_form_encoding_fails_for_reserved_characters() {
    let fakes = setup().await;
    let code = code_from(&authorize_url(&fakes, &[])).await;
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.encode(format!("gen-id:{SECRET}"));
    let response = http()
        .post(format!("{}/token", fakes.urls().generic_issuer))
        .header("authorization", format!("Basic {raw}"))
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("Basic"));
    let (_, body) = json(response).await;
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn iss_is_on_error_responses_and_can_be_wrong_or_omitted() {
    let fakes = setup().await;
    let control = fakes.control();
    let issuer = fakes.urls().generic_issuer.clone();
    control.set_consent(Provider::Generic, ConsentMode::AutoDeny);
    let location = authorize(&authorize_url(&fakes, &[])).await;
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&location, "iss").as_deref(), Some(issuer.as_str()));

    control.set_consent(Provider::Generic, ConsentMode::AutoApprove);
    control.set_variant(Variant::GenericIssResponse(IssResponse::Wrong));
    let location = authorize(&authorize_url(&fakes, &[])).await;
    let iss = param(&location, "iss").unwrap();
    assert_ne!(iss, issuer);

    control.set_variant(Variant::GenericIssResponse(IssResponse::Omit));
    assert_eq!(param(&authorize(&authorize_url(&fakes, &[])).await, "iss"), None);

    control.set_variant(Variant::GenericIssResponse(IssResponse::FollowMetadata));
    control.set_variant(Variant::GenericIssParameterSupported(false));
    assert_eq!(param(&authorize(&authorize_url(&fakes, &[])).await, "iss"), None);
}

#[tokio::test]
async fn pkce_failures_are_invalid_grant() {
    let fakes = setup().await;
    let challenge = pkce_s256(VERIFIER);
    let code = code_from(&authorize_url(&fakes, &s256_extra(&challenge))).await;
    let wrong = "A".repeat(50);
    let (status, body) = token(
        &fakes,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &wrong)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    let code = code_from(&authorize_url(&fakes, &[])).await;
    let (status, body) = token(
        &fakes,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    // Without advertised PKCE support the challenge is ignored and a verifier is a downgrade sign.
    fakes.control().set_variant(Variant::GenericCodeChallengeMethods(None));
    let code = code_from(&authorize_url(&fakes, &s256_extra(&challenge))).await;
    let (status, _) = token(
        &fakes,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 400);

    // Only S256 advertised: plain is refused at the authorization endpoint.
    fakes.control().set_variant(Variant::GenericCodeChallengeMethods(Some(vec!["S256".into()])));
    let location =
        authorize(&authorize_url(&fakes, &[("code_challenge", VERIFIER), ("code_challenge_method", "plain")])).await;
    assert_eq!(param(&location, "error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn only_advertised_client_auth_methods_are_accepted() {
    let fakes = setup().await;
    let control = fakes.control();
    let url = format!("{}/token", fakes.urls().generic_issuer);
    control.set_variant(Variant::GenericTokenEndpointAuthMethods(vec!["client_secret_post".into()]));
    let code = code_from(&authorize_url(&fakes, &[])).await;
    let (status, body) =
        token(&fakes, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let response = http()
        .post(&url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", "gen-id"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    control.set_variant(Variant::GenericTokenEndpointAuthMethods(vec![
        "client_secret_basic".into(),
        "client_secret_post".into(),
    ]));
    let code = code_from(&authorize_url(&fakes, &[])).await;
    let (status, body) = token(
        &fakes,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("client_secret", SECRET)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "two auth methods at once");
}

#[tokio::test]
async fn refresh_rotation_reuse_detection_and_rotation_off() {
    let fakes = setup().await;
    let first = connect(&fakes).await;
    let old = first["refresh_token"].as_str().unwrap();
    let (status, second) = token(&fakes, &[("grant_type", "refresh_token"), ("refresh_token", old)]).await;
    assert_eq!(status, 200);
    let new = second["refresh_token"].as_str().unwrap();
    assert_ne!(new, old);
    // Replaying the old one is treated as theft: the whole grant dies.
    let (status, body) = token(&fakes, &[("grant_type", "refresh_token"), ("refresh_token", old)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert!(!fakes.control().is_refresh_token_active(Provider::Generic, new));

    fakes.control().set_variant(Variant::GenericRefreshRotation(false));
    let first = connect(&fakes).await;
    let refresh = first["refresh_token"].as_str().unwrap();
    for _ in 0..2 {
        let (status, body) = token(&fakes, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
        assert_eq!(status, 200);
        assert!(body.get("refresh_token").is_none());
    }
}

#[tokio::test]
async fn revocation_is_200_even_for_unknown_tokens() {
    let fakes = setup().await;
    let body = connect(&fakes).await;
    let url = format!("{}/revoke", fakes.urls().generic_issuer);
    let revoke = |token: String| {
        let url = url.clone();
        async move {
            http()
                .post(url)
                .header("authorization", basic("gen-id", SECRET))
                .form(&[("token", token.as_str()), ("token_type_hint", "refresh_token")])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(revoke("unknown".into()).await, 200);
    assert_eq!(revoke(body["refresh_token"].as_str().unwrap().to_owned()).await, 200);
    assert!(!fakes.control().is_access_token_active(Provider::Generic, body["access_token"].as_str().unwrap()));
    assert_eq!(revoke(body["refresh_token"].as_str().unwrap().to_owned()).await, 200);
}

#[tokio::test]
async fn redirect_mismatch_expired_code_and_insufficient_scope() {
    let fakes = setup().await;
    let code = code_from(&authorize_url(&fakes, &[])).await;
    let (status, body) = token(
        &fakes,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:1/x")],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    let code = code_from(&authorize_url(&fakes, &[])).await;
    fakes.control().advance(Duration::from_secs(601));
    let (status, _) =
        token(&fakes, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(status, 400);

    let body = connect(&fakes).await;
    let base = fakes.urls().generic_issuer.strip_suffix("/realms/test").unwrap().to_owned();
    let response = http()
        .get(format!("{base}/api/scoped/read"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    let response = http()
        .get(format!("{base}/api/scoped/email"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = http().get(format!("{base}/api/echo")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}
