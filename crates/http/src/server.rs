use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{any, delete, get, post};
use tokenvault_service::Vault;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::routes::{admin, app, connect, health, proxy, use_api, webhooks};

/// Limits of the HTTP edge.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Largest accepted request body (JSON APIs). Larger bodies get 413 `payload_too_large`.
    pub max_body_bytes: usize,
    /// A request still running after this long gets 408 `request_timeout`. Not for the proxy,
    /// which has its own limits (`ProxyLimits`: time to the provider's answer, then idle time
    /// while the body streams).
    pub request_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self { max_body_bytes: 1024 * 1024, request_timeout: Duration::from_secs(30) }
    }
}

pub fn build_router(vault: Arc<Vault>, options: &HttpOptions) -> Router {
    let admin_api = Router::new()
        .route("/apps", get(admin::list_apps).post(admin::create_app))
        .route("/apps/{app_id}", get(admin::get_app).patch(admin::update_app).delete(admin::delete_app))
        .route("/apps/{app_id}/api-keys", get(admin::list_api_keys).post(admin::mint_api_key))
        .route("/apps/{app_id}/api-keys/{key_id}", delete(admin::revoke_api_key))
        .route("/admin-tokens", get(admin::list_admin_tokens).post(admin::mint_admin_token))
        .route("/admin-tokens/{id}", delete(admin::revoke_admin_token))
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
        .route("/webhook-deliveries", get(webhooks::list_deliveries))
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
        .route("/api-keys", get(app::list_api_keys))
        .route("/api-keys/{key_id}", delete(app::revoke_api_key));
    let proxy_api = Router::new()
        .route("/v1/proxy/{grant_id}/{*path}", any(proxy::proxy))
        .route("/v1/proxy/{grant_id}", any(proxy::proxy))
        .with_state(vault.clone());
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(crate::openapi::document))
        .nest("/admin/v1", admin_api)
        .nest("/v1", app_api)
        .route("/connect/{token}", get(connect::start))
        .route("/connect/install/{config_id}", get(connect::install))
        .route("/connect/callback/{config_id}", get(connect::callback))
        .route("/webhooks/zoom/{config_id}", post(webhooks::zoom))
        .route("/webhooks/aircall/{config_id}", post(webhooks::aircall))
        .with_state(vault)
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, options.request_timeout))
        .merge(proxy_api)
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(crate::error_shape::layer))
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
