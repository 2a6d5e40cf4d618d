//! Issue 9: a provider behind a private certificate authority. The vault refuses it with the TLS
//! verification reason named (in the API error, the grant's `last_error_detail`, the connect
//! session's `error_message`), and trusts it with `--ca-file`, or with `SSL_CERT_FILE` for the
//! process. The provider is real TLS: a local terminator with a certificate for `localhost`
//! signed by a CA made for the test, in front of the fake generic provider or a metadata server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_fakes::Provider;

use crate::connect_env::ConnectEnv;
use crate::support::{ADMIN_TOKEN, TestVault, assert_error_shape};

/// A CA made for one test, and a TLS server certificate for `localhost` it signed.
struct TestCa {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    fn new() -> TestCa {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "tokenvault test CA");
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
        let server =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![server_cert.der().clone(), ca_cert.der().clone()], key)
                .unwrap();
        TestCa { ca_pem: ca_cert.pem(), server: Arc::new(server) }
    }

    fn write_ca(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }

    /// A TLS listener on 127.0.0.1 that passes each decrypted connection on to `target`.
    async fn front(&self, target: SocketAddr) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        self.front_on(listener, target);
        port
    }

    fn front_on(&self, listener: tokio::net::TcpListener, target: SocketAddr) {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.server.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that does not trust the CA aborts the handshake: nothing to pass on.
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
    }
}

/// An authorization server behind the test CA at `https://localhost:PORT`, serving RFC 8414
/// metadata (enough for a provider configuration by discovery). Returns the issuer.
async fn tls_issuer(ca: &TestCa) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("https://localhost:{}", listener.local_addr().unwrap().port());
    let metadata = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
    });
    let app = axum::Router::new().route(
        "/.well-known/oauth-authorization-server",
        axum::routing::get(move || async move { axum::Json(metadata) }),
    );
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(plain, app).await });
    ca.front_on(listener, plain_addr);
    issuer
}

fn by_discovery(issuer: &str) -> Value {
    json!({ "provider": "custom", "key": "private-ca", "client_id": "c", "client_secret": "private-ca-secret", "issuer": issuer })
}

fn mentions_the_certificate(message: &str) -> bool {
    message.contains("UnknownIssuer") || message.contains("certificate")
}

crate::on_both_backends!(an_untrusted_provider_is_refused_with_the_tls_reason_and_trusted_with_ca_file);

async fn an_untrusted_provider_is_refused_with_the_tls_reason_and_trusted_with_ca_file(vault: TestVault) {
    let ca = TestCa::new();
    let issuer = tls_issuer(&ca).await;
    let (_, key) = vault.new_app("acme").await;
    let (status, body) =
        vault.call(Method::POST, "/v1/provider-configs", Some(&key), Some(by_discovery(&issuer))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(assert_error_shape(status, &body), "discovery_failed");
    let message = body["message"].as_str().unwrap();
    let port = issuer.rsplit(':').next().unwrap();
    assert!(message.contains(&format!("localhost:{port}/.well-known/")), "the endpoint: {message}");
    assert!(message.contains("TLS") && mentions_the_certificate(message), "the verification reason: {message}");

    let ca_file = ca.write_ca(vault.settings.data_dir.parent().unwrap());
    let pem = std::fs::read(&ca_file).unwrap();
    let vault = vault.restart_adjusted(|s| s.egress = s.egress.clone().with_extra_roots(pem).unwrap()).await;
    let (status, config) =
        vault.call(Method::POST, "/v1/provider-configs", Some(&key), Some(by_discovery(&issuer))).await;
    assert_eq!(status, StatusCode::CREATED, "trusted with the CA file: {config}");
    assert_eq!(config["endpoints"]["token_url"], format!("{issuer}/token"));
}

/// The fake generic provider's token and userinfo endpoints behind the test CA; its authorize
/// endpoint (the browser's) stays plain.
async fn configure_generic_behind_tls(env: &ConnectEnv, ca: &TestCa) -> String {
    let generic = url::Url::parse(&env.fakes.urls().generic_issuer).unwrap();
    let target: SocketAddr = format!("127.0.0.1:{}", generic.port().unwrap()).parse().unwrap();
    let base = format!("https://localhost:{}{}", ca.front(target).await, generic.path());
    env.configure(
        Provider::Generic,
        json!({ "provider": "custom", "key": "generic", "client_id": "generic-client", "client_secret": "generic-secret",
            "scopes": ["openid", "profile"],
            "endpoints": { "authorize_url": format!("{}/authorize", env.fakes.urls().generic_issuer),
                "token_url": format!("{base}/token"), "userinfo_url": format!("{base}/userinfo"), "client_auth": "basic" } }),
    )
    .await;
    base
}

mod refresh_and_connect_failures_name_the_tls_reason {
    use super::*;

    async fn run(backend: tokenvault_testkit::Backend) {
        let ca = TestCa::new();
        let pem = ca.ca_pem.clone().into_bytes();
        let Some(env) = ConnectEnv::start_adjusted(backend, None, |s| {
            s.egress = s.egress.clone().with_extra_roots(pem).unwrap();
        })
        .await
        else {
            return;
        };
        let base = configure_generic_behind_tls(&env, &ca).await;
        let grant_id = env.connect_ok("user-1", "generic").await;
        // The same vault without the CA: the refresh fails and says why, precisely.
        let ConnectEnv { vault, fakes, key } = env;
        // Same address: the redirect URI registered at the provider names it.
        let listen: SocketAddr = vault.base.trim_start_matches("http://").parse().unwrap();
        let vault = vault
            .restart_adjusted(|s| {
                s.egress = tokenvault_providers::EgressPolicy::unrestricted();
                s.listen = listen;
            })
            .await;
        let env = ConnectEnv { vault, fakes, key };
        env.vault.clock.advance(Duration::from_secs(2 * 3600));
        let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let grant = env.grant(&grant_id).await;
        assert_eq!(grant["last_error"], "tls_error", "{grant}");
        let detail = grant["last_error_detail"].as_str().unwrap();
        let host_path = base.trim_start_matches("https://");
        assert!(detail.contains(&format!("{host_path}/token")), "{detail}");
        assert!(mentions_the_certificate(detail), "{detail}");
        // A new connection fails at the code exchange, and the session says why.
        let (session_id, connect_url) = env.session("user-2", &["generic"]).await;
        let (authorize, cookies) = env.open(&connect_url).await;
        let step = env.get(&env.consent(&authorize).await, &cookies).await;
        assert!(step.location.unwrap().contains("error=provider_tls_error"));
        let session = env.session_status(&session_id).await;
        assert_eq!(session["error"]["code"], "provider_tls_error", "{session}");
        let message = session["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("{host_path}/token")) && mentions_the_certificate(message), "{message}");
    }

    #[tokio::test]
    async fn sqlite() {
        run(tokenvault_testkit::Backend::Sqlite).await
    }

    #[tokio::test]
    async fn postgres() {
        run(tokenvault_testkit::Backend::Postgres).await
    }
}

/// `SSL_CERT_FILE` replaces the system's roots for the whole process (rustls-native-certs reads
/// it), so an operator can also trust a private CA that way; `--ca-file` adds to the system's.
#[tokio::test]
async fn ssl_cert_file_trusts_a_private_ca_for_the_process() {
    let ca = TestCa::new();
    let issuer = tls_issuer(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    let start = |ssl_cert_file: Option<&std::path::Path>, data: &str| {
        let mut command = crate::process::tokenvault();
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--allow-private-egress", "--refresh-interval-seconds", "0"])
            .arg("--data-dir")
            .arg(dir.path().join(data))
            .env("TOKENVAULT_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("SSL_CERT_DIR");
        match ssl_cert_file {
            Some(file) => command.env("SSL_CERT_FILE", file),
            None => command.env_remove("SSL_CERT_FILE"),
        };
        crate::process::spawn(command)
    };
    let http = reqwest::Client::new();
    for (trusted, data) in [(true, "trusting"), (false, "plain")] {
        let (mut child, base, _, _) = start(trusted.then_some(ca_file.as_path()), data);
        let app: Value = http
            .post(format!("{base}/admin/v1/apps"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "acme"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key: Value = http
            .post(format!("{base}/admin/v1/apps/{}/api-keys", app["id"].as_str().unwrap()))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "scopes": ["*"] }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let response = http
            .post(format!("{base}/v1/provider-configs"))
            .bearer_auth(key["key"].as_str().unwrap())
            .json(&by_discovery(&issuer))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        if trusted {
            assert_eq!(status, StatusCode::CREATED, "with SSL_CERT_FILE: {body}");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(mentions_the_certificate(body["message"].as_str().unwrap()), "{body}");
        }
        crate::process::terminate(&mut child);
    }
}
