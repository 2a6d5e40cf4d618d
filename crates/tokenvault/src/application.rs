//! Builds a running vault from settings: database, keys, HTTP listener.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokenvault_http::{HttpOptions, build_router};
use tokenvault_providers::Catalog;
use tokenvault_service::{Clock, Store, Vault, VaultConfig};

use crate::{Settings, master_key};

/// A vault bound to its listener, not yet serving. Tests build one on port 0 and read `addr`.
pub struct Application {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    vault: Arc<Vault>,
    http: HttpOptions,
    refresh_interval: Option<std::time::Duration>,
    webhook_interval: Option<std::time::Duration>,
}

impl Application {
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let public_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => url::Url::parse(&format!("http://{addr}/"))?,
        };
        let vault = open_vault_at(settings, clock, public_url).await?;
        let http = HttpOptions {
            max_body_bytes: settings.max_body_bytes,
            trusted_proxies: tokenvault_http::TrustedProxies::new(settings.trusted_proxies.clone()),
            ..HttpOptions::default()
        };
        Ok(Application {
            listener,
            addr,
            vault,
            http,
            refresh_interval: settings.refresh.interval,
            webhook_interval: settings.refresh.webhook_interval,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn vault(&self) -> Arc<Vault> {
        self.vault.clone()
    }

    /// Serves until `shutdown` resolves; in-flight requests finish, then the pool closes.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = build_router(self.vault.clone(), &self.http);
        let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
        let refresher = self
            .refresh_interval
            .map(|interval| tokio::spawn(self.vault.clone().run_refresher(interval, workers_stopped)));
        let webhooks = self
            .webhook_interval
            .map(|interval| tokio::spawn(self.vault.clone().run_webhook_worker(interval, stop_workers.subscribe())));
        let maintenance = tokio::spawn(self.vault.clone().run_audit_retention(stop_workers.subscribe()));
        let installs = tokio::spawn(
            self.vault
                .clone()
                .run_install_sweeper(tokenvault_service::INSTALL_SWEEP_INTERVAL, stop_workers.subscribe()),
        );
        let approvals = tokio::spawn(
            self.vault.clone().run_approval_sweeper(std::time::Duration::from_secs(60), stop_workers.subscribe()),
        );
        let served = tokenvault_http::serve(self.listener, router, &self.http, shutdown).await;
        let _ = stop_workers.send(true);
        for worker in [refresher, webhooks, Some(maintenance), Some(installs), Some(approvals)].into_iter().flatten() {
            let _ = worker.await;
        }
        // Nothing recorded before the stop is lost: refresh results still waiting for the
        // database get a last chance, then the audit rows are flushed.
        let unstored = self.vault.wait_for_pending_refreshes(std::time::Duration::from_secs(10)).await;
        if unstored > 0 {
            tracing::error!(unstored, "refresh results could not be stored before shutdown");
        }
        self.vault.flush_audit().await;
        self.vault.store().close().await;
        Ok(served?)
    }
}

/// Opens the database (creating the embedded one on first start) and the vault on top of it.
pub async fn open_vault(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Vault>> {
    let public_url = match &settings.public_url {
        Some(url) => url.clone(),
        None => url::Url::parse(&format!("http://{}/", settings.listen))?,
    };
    open_vault_at(settings, clock, public_url).await
}

async fn open_vault_at(settings: &Settings, clock: Arc<dyn Clock>, public_url: url::Url) -> anyhow::Result<Arc<Vault>> {
    let catalog = Catalog::load(settings.providers_dir.as_deref()).context("cannot load the provider catalog")?;
    if settings.uses_embedded_database() {
        create_private_dir(&settings.data_dir)?;
    }
    let master_key = master_key::resolve(settings)?;
    let store = Store::connect(&settings.effective_database_url()).await.context("cannot open the database")?;
    let config = VaultConfig {
        admin_token: settings.admin_token.clone(),
        catalog,
        public_url,
        key_cache_ttl: settings.key_cache_ttl,
        refresh_margin: settings.refresh.margin,
        refresh_lease: settings.refresh.lease,
        refresh_concurrency_per_provider: settings.refresh.concurrency_per_provider,
        proxy_limits: settings.proxy_limits.clone(),
        audit_retention: settings.audit_retention,
        egress: settings.egress.clone(),
        metrics_token: settings.metrics_token.clone(),
        ..VaultConfig::default()
    };
    Ok(Vault::open(store, master_key, clock, config).await?)
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        tracing::info!(path = %dir.display(), "created data directory");
    }
    Ok(())
}
