//! The router (every route, the layers around them) and the server loop that feeds it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::StatusCode;
use axum::routing::{any, delete, get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokenvault_service::Vault;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::HeadLimits;
use crate::routes::{admin, agents, app, approvals, connect, health, portal, proxy, use_api, wallet, webhooks};

/// Limits of the HTTP edge.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Largest accepted request body (JSON APIs). Larger bodies get 413 `payload_too_large`.
    pub max_body_bytes: usize,
    /// A request still running after this long gets 408 `request_timeout`. Not for the proxy,
    /// which has its own limits (`ProxyLimits`: time to the provider's answer, then idle time
    /// while the body streams).
    pub request_timeout: Duration,
    /// Largest request URI and headers: 414 `uri_too_long`, 431 `request_headers_too_large`.
    pub head: HeadLimits,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for IP-allowlist policies).
    pub trusted_proxies: crate::TrustedProxies,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            head: HeadLimits::default(),
            trusted_proxies: crate::TrustedProxies::default(),
        }
    }
}

pub fn build_router(vault: Arc<Vault>, options: &HttpOptions) -> Router {
    let admin_api = Router::new()
        .route("/apps", get(admin::list_apps).post(admin::create_app))
        .route("/apps/{app_id}", get(admin::get_app).patch(admin::update_app).delete(admin::delete_app))
        .route("/apps/{app_id}/api-keys", get(admin::list_api_keys).post(admin::mint_api_key))
        .route("/apps/{app_id}/api-keys/{key_id}", delete(admin::revoke_api_key))
        .route("/apps/{app_id}/api-keys/{key_id}/rotate", post(admin::rotate_api_key))
        .route("/admin-tokens", get(admin::list_admin_tokens).post(admin::mint_admin_token))
        .route("/admin-tokens/{id}", delete(admin::revoke_admin_token))
        .route("/operators", get(admin::list_operators).post(admin::create_operator))
        .route("/keys", get(admin::key_status));
    let app_api = Router::new()
        .route("/app", get(app::current_app).patch(app::update_app))
        .route("/providers", get(app::list_providers))
        .route("/provider-configs", get(app::list_provider_configs).post(app::create_provider_config))
        .route(
            "/provider-configs/{id}",
            get(app::get_provider_config).put(app::update_provider_config).delete(app::delete_provider_config),
        )
        .route("/connect-sessions", post(app::create_connect_session))
        .route("/connect-sessions/{id}", get(app::get_connect_session))
        .route("/grants", get(app::list_grants))
        .route("/grants/{id}", get(app::get_grant).delete(app::disconnect_grant))
        .route("/grants/{id}/token", post(app::grant_token))
        .route("/grants/{id}/verify", post(app::verify_grant))
        .route("/installs/claim", post(app::claim_install))
        .route("/webhook-endpoints", get(webhooks::list_endpoints).post(webhooks::create_endpoint))
        .route("/webhook-endpoints/{id}", delete(webhooks::delete_endpoint))
        .route("/webhook-endpoints/{id}/rotate-secret", post(webhooks::rotate_secret))
        .route("/webhook-deliveries", get(webhooks::list_deliveries))
        .route("/webhook-deliveries/{id}/retry", post(webhooks::retry_delivery))
        .route("/policies", get(use_api::list_policies).post(use_api::create_policy))
        .route("/policies/{id}", delete(use_api::delete_policy))
        .route("/managed-secrets", get(use_api::list_managed_secrets).post(use_api::create_managed_secret))
        .route(
            "/managed-secrets/{id}",
            get(use_api::get_managed_secret)
                .put(use_api::replace_managed_secret)
                .delete(use_api::delete_managed_secret),
        )
        .route("/audit", get(use_api::query_audit))
        .route("/audit/export", get(use_api::export_audit))
        .route("/api-keys", get(app::list_api_keys).post(app::mint_api_key))
        .route("/api-keys/derive", post(app::derive_api_key))
        .route("/api-keys/{key_id}", delete(app::revoke_api_key))
        .route("/api-keys/{key_id}/rotate", post(app::rotate_api_key))
        .route("/agents", get(agents::list_agents).post(agents::create_agent))
        .route("/agents/{agent_id}", get(agents::get_agent).patch(agents::update_agent).delete(agents::revoke_agent))
        .route("/agents/{agent_id}/keys", post(agents::mint_agent_key))
        .route("/agents/{agent_id}/delegations", get(agents::list_delegations).post(agents::create_delegation))
        .route("/delegations/{id}", get(agents::get_delegation).delete(agents::revoke_delegation))
        .route("/approvals", get(approvals::list_approvals))
        .route("/approvals/{id}", get(approvals::get_approval))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/deny", post(approvals::deny))
        .route("/approvals/{id}/links", post(approvals::create_link))
        .route("/approvals/{id}/execute", post(approvals::execute))
        .route("/approvals/{id}/result", get(approvals::result))
        .route("/wallet-sessions", post(wallet::create_session));
    let counted = vault.clone();
    let proxy_api = Router::new()
        .route("/v1/proxy/{grant_id}/{*path}", any(proxy::proxy))
        .route("/v1/proxy/{grant_id}", any(proxy::proxy))
        .with_state(vault.clone());
    // MCP for AI agents: the key is checked on every request, before the MCP layer reads it.
    let mcp = Router::new()
        .nest_service("/mcp", crate::mcp::service(vault.clone()))
        .route_layer(axum::middleware::from_fn_with_state(vault.clone(), crate::mcp::authenticate));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/metrics", get(crate::metrics::metrics))
        .nest("/admin/v1", admin_api)
        .nest("/v1", app_api)
        .route("/connect/{token}", get(connect::start))
        .route("/connect.js", get(connect::script))
        .route("/approve/{token}", get(approvals::link_page).post(approvals::link_decide))
        .route("/portal", get(portal::overview))
        .route("/portal/sign-in", get(portal::sign_in_page).post(portal::sign_in))
        .route("/portal/sign-out", post(portal::sign_out))
        .route("/portal/sign-out-everywhere", post(portal::sign_out_everywhere))
        .route("/portal/static/portal.css", get(portal::stylesheet))
        .route("/portal/static/portal.js", get(portal::script))
        .route("/portal/apps", post(portal::apps::create))
        .route("/portal/apps/{app_id}", get(portal::apps::settings).post(portal::apps::update))
        .route("/portal/apps/{app_id}/providers", get(portal::apps::providers).post(portal::apps::add_provider))
        .route("/portal/apps/{app_id}/providers/{config_id}/delete", post(portal::apps::delete_provider))
        .route("/portal/apps/{app_id}/keys", get(portal::apps::keys).post(portal::apps::mint_key))
        .route("/portal/apps/{app_id}/keys/{key_id}/revoke", post(portal::apps::revoke_key))
        .route("/portal/apps/{app_id}/keys/{key_id}/rotate", post(portal::apps::rotate_key))
        .route("/portal/apps/{app_id}/grants", get(portal::activity::grants))
        .route("/portal/apps/{app_id}/grants/{grant_id}", get(portal::activity::grant))
        .route("/portal/apps/{app_id}/grants/{grant_id}/disconnect", post(portal::activity::disconnect))
        .route("/portal/apps/{app_id}/connect-links", post(portal::activity::connect_link))
        .route("/portal/apps/{app_id}/audit", get(portal::activity::audit))
        .route("/portal/apps/{app_id}/audit/export", get(portal::activity::export))
        .route("/portal/apps/{app_id}/agents", get(portal::manage::agents).post(portal::manage::create_agent))
        .route("/portal/apps/{app_id}/agents/{agent_id}", get(portal::manage::agent))
        .route("/portal/apps/{app_id}/agents/{agent_id}/delegations", post(portal::manage::delegate))
        .route(
            "/portal/apps/{app_id}/agents/{agent_id}/delegations/{delegation_id}/revoke",
            post(portal::manage::revoke_delegation),
        )
        .route("/portal/apps/{app_id}/agents/{agent_id}/keys", post(portal::manage::mint_agent_key))
        .route("/portal/apps/{app_id}/approvals", get(portal::manage::approvals))
        .route("/portal/apps/{app_id}/approvals/{approval_id}/approve", post(portal::manage::approve))
        .route("/portal/apps/{app_id}/approvals/{approval_id}/deny", post(portal::manage::deny))
        .route("/portal/apps/{app_id}/webhooks", get(portal::manage::webhooks).post(portal::manage::create_webhook))
        .route("/portal/apps/{app_id}/webhooks/{endpoint_id}/delete", post(portal::manage::delete_webhook))
        .route(
            "/portal/apps/{app_id}/webhooks/{endpoint_id}/rotate-secret",
            post(portal::manage::rotate_webhook_secret),
        )
        .route(
            "/portal/apps/{app_id}/webhooks/deliveries/{delivery_id}/retry",
            post(portal::manage::retry_webhook_delivery),
        )
        .route("/portal/apps/{app_id}/secrets", get(portal::manage::secrets).post(portal::manage::create_secret))
        .route("/portal/apps/{app_id}/secrets/{secret_id}/delete", post(portal::manage::delete_secret))
        .route("/portal/apps/{app_id}/policies", get(portal::manage::policies).post(portal::manage::create_policy))
        .route("/portal/apps/{app_id}/policies/{policy_id}/delete", post(portal::manage::delete_policy))
        .route("/portal/keys", get(portal::manage::key_ring))
        .route("/portal/keys/rotate", post(portal::manage::rotate_data_key))
        .route("/wallet", get(wallet::page))
        .route("/wallet/{token}", get(wallet::open))
        .route("/wallet/sign-out", post(wallet::sign_out))
        .route("/wallet/grants/{id}/disconnect", post(wallet::disconnect))
        .route("/wallet/delegations/{id}/revoke", post(wallet::revoke_delegation))
        .route("/connect/install/{config_id}", get(connect::install))
        .route("/connect/callback/{config_id}", get(connect::callback))
        .route("/webhooks/zoom/{config_id}", post(webhooks::zoom))
        .route("/webhooks/aircall/{config_id}", post(webhooks::aircall))
        .with_state(vault)
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, options.request_timeout))
        .merge(proxy_api)
        .merge(mcp)
        .route_layer(axum::middleware::from_fn_with_state(counted, crate::metrics::record))
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn_with_state(options.head, crate::error_shape::layer))
}

/// hyper's own limits while it parses a request head, kept well above [`HeadLimits`] so that the
/// vault, not hyper, answers an oversized request (with the JSON error shape). Past them hyper
/// answers by itself, with a status and no body: 431 for more header lines than this or a head
/// larger than the read buffer, 414 for a URI over 65534 bytes (hyper's fixed limit).
const HYPER_MIN_MAX_HEADERS: usize = 500;
const HYPER_MIN_BUF_BYTES: usize = 400 * 1024;

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish.
///
/// The loop is `axum::serve`'s, with hyper configured: `axum::serve` offers no way to raise
/// hyper's limits (100 header lines by default), so a request past them would get hyper's
/// bodyless answer instead of the vault's JSON one.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    options: &HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_headers(HYPER_MIN_MAX_HEADERS.max(options.head.max_headers * 4))
        .max_buf_size(HYPER_MIN_BUF_BYTES.max(4 * (options.head.max_header_bytes + options.head.max_uri_bytes)));

    // Dropping `stop_rx` tells every connection to finish; each holds a `done_rx` until it ends.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_rx);
    });
    let (done_tx, done_rx) = tokio::sync::watch::channel(());
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            _ = stop_tx.closed() => break,
        };
        let (router, proxies) = (router.clone(), options.trusted_proxies.clone());
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(Body::new);
            let client = crate::client_ip::ClientIp(proxies.client_ip(remote, request.headers()));
            request.extensions_mut().insert(client);
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(remote));
            router.clone().oneshot(request)
        });
        let (builder, stop_tx, done_rx) = (builder.clone(), stop_tx.clone(), done_rx.clone());
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let mut stopping = false;
            loop {
                tokio::select! {
                    ended = connection.as_mut() => {
                        if let Err(error) = ended {
                            tracing::debug!(error = %error, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop_tx.closed(), if !stopping => {
                        stopping = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(done_rx);
        });
    }
    drop(done_rx);
    drop(listener);
    done_tx.closed().await;
    Ok(())
}

/// A failed accept: a connection that broke before it was accepted is skipped; anything else
/// (e.g. out of file descriptors) is logged and retried after a second, as `axum::serve` does.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(error.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset)
    {
        return;
    }
    tracing::error!(error = %error, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
