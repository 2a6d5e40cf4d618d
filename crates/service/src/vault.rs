//! The [`Vault`]: the state every use case works on (store, key ring, caches, queues, limits) and
//! its settings. Each flow adds its use cases as an `impl Vault` block in its own folder.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokenvault_crypto::MasterKey;
use tokenvault_providers::{Catalog, EgressPolicy, ProviderHttp};
use tokenvault_store::Store;
use url::Url;

use crate::admin::key_manager::KeyManager;
use crate::lifecycle::refresher::RefreshLimits;
use crate::lifecycle::single_flight::KeyedLocks;
use crate::{Clock, ServiceError, Timestamp};

/// Settings of the use-case layer (the binary fills them from flags, environment and file).
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// A fixed admin token given at start, in addition to tokens minted by `tokenvault admin-token`.
    pub admin_token: Option<SecretString>,
    /// How long a process trusts its cached view of the data keys before re-reading them; a key
    /// rotation run by another process waits twice this long before its final sweep.
    pub key_cache_ttl: Duration,
    /// Rows re-sealed per batch during key rotation.
    pub rotation_batch_size: i64,
    /// The provider catalog (built-in definitions plus operator overrides).
    pub catalog: Catalog,
    /// The vault's externally reachable base URL: redirect URIs and connect links start here.
    pub public_url: Url,
    /// How long an unused connect session stays valid by default.
    pub connect_session_ttl: Duration,
    /// A token expiring within this margin is refreshed before it is handed out.
    pub refresh_margin: Duration,
    /// How long a refresh lease holds; a crashed holder blocks a grant at most this long.
    pub refresh_lease: Duration,
    /// Background refreshes running at once, per provider.
    pub refresh_concurrency_per_provider: usize,
    /// Size and time limits of proxied calls.
    pub proxy_limits: crate::ProxyLimits,
    /// Audit rows older than this are deleted (hourly, and by [`Vault::purge_expired_audit`]).
    pub audit_retention: Duration,
    /// A bearer token `GET /metrics` requires; `None`: the endpoint is open.
    pub metrics_token: Option<SecretString>,
    /// Which destination addresses outbound calls (providers, proxy, app webhooks) may reach;
    /// the default refuses loopback, private and link-local ones.
    pub egress: EgressPolicy,
    /// Entry limits of the hot-path caches.
    pub cache_limits: crate::CacheLimits,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            key_cache_ttl: Duration::from_secs(5),
            rotation_batch_size: 200,
            catalog: Catalog::built_in(),
            public_url: Url::parse("http://127.0.0.1:8080").expect("valid URL"),
            connect_session_ttl: Duration::from_secs(600),
            refresh_margin: Duration::from_secs(120),
            refresh_lease: Duration::from_secs(30),
            refresh_concurrency_per_provider: 4,
            proxy_limits: crate::ProxyLimits::default(),
            audit_retention: Duration::from_secs(365 * 86_400),
            metrics_token: None,
            egress: EgressPolicy::default(),
            cache_limits: crate::CacheLimits::default(),
        }
    }
}

/// The vault: every use case hangs off this, shared by the HTTP layer and the CLI.
pub struct Vault {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) keys: KeyManager,
    pub(crate) config: VaultConfig,
    pub(crate) provider_http: ProviderHttp,
    pub(crate) refresh_locks: KeyedLocks,
    pub(crate) refresh_limits: RefreshLimits,
    /// Names this process as a lease holder.
    pub(crate) instance_id: String,
    /// Sends app webhooks: no redirects, short timeout, the egress guard.
    pub(crate) webhook_http: reqwest::Client,
    /// Calls provider APIs for the proxy: no redirects, connection pooling, the egress guard.
    pub(crate) proxy_http: reqwest::Client,
    pub(crate) rate_buckets: crate::access::policies::RateBuckets,
    pub(crate) audit_queue: crate::audit::AuditQueue,
    pub(crate) metrics: Arc<crate::Metrics>,
    pub(crate) key_touches: crate::access::api_keys::KeyTouches,
    /// This vault itself, for work that outlives a call (a refresh result still being stored).
    pub(crate) self_ref: std::sync::Weak<Vault>,
    /// Refresh results kept in memory until the database takes them.
    pub(crate) pending_refreshes: std::sync::atomic::AtomicUsize,
    pub(crate) pending_refreshes_changed: tokio::sync::Notify,
    /// Woken whenever an approval changes state, for long-polling callers of this instance.
    pub(crate) approval_changes: tokio::sync::Notify,
    /// Failed portal sign-ins, per email and per address (per instance).
    pub(crate) sign_in_failures: crate::admin::operators::SignInFailures,
    /// Verified API keys, grants, managed secrets and policies, kept coherent by the change feed.
    pub(crate) cache: Arc<crate::cache::hot_cache::HotCache>,
}

/// Who passed admin authentication: the token given at start, or a minted one (by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminIdentity {
    ConfiguredToken,
    MintedToken { id: String },
}

impl Vault {
    /// Applies migrations, loads (or on first start creates) the data keys, and checks that
    /// `master_key` is the one the database was set up with.
    pub async fn open(
        store: Store,
        master_key: MasterKey,
        clock: Arc<dyn Clock>,
        config: VaultConfig,
    ) -> Result<Arc<Vault>, ServiceError> {
        store.migrate().await.map_err(|e| ServiceError::Internal(e.to_string()))?;
        let keys = KeyManager::load(store.clone(), master_key, clock.clone(), config.key_cache_ttl).await?;
        let refresh_limits = RefreshLimits::new(config.refresh_concurrency_per_provider);
        let store_for_audit = store.clone();
        let metrics = Arc::new(crate::Metrics::default());
        let egress = config.egress.clone();
        let cache = Arc::new(crate::cache::hot_cache::HotCache::new(config.cache_limits, &metrics));
        let announced = Arc::downgrade(&cache);
        store.set_change_listener(Arc::new(move |kind, key| {
            if let Some(cache) = announced.upgrade() {
                cache.drop_changed(kind, key);
            }
        }));
        let vault = Arc::new_cyclic(|self_ref| Vault {
            cache,
            self_ref: self_ref.clone(),
            pending_refreshes: Default::default(),
            pending_refreshes_changed: Default::default(),
            approval_changes: Default::default(),
            sign_in_failures: Default::default(),
            store,
            clock,
            keys,
            config,
            provider_http: ProviderHttp::new(Duration::from_secs(15), egress.clone()),
            refresh_locks: KeyedLocks::default(),
            refresh_limits,
            instance_id: format!("vault-{}", uuid::Uuid::new_v4().simple()),
            webhook_http: egress
                .client_builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .user_agent(concat!("tokenvault-webhooks/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("HTTP client builds"),
            proxy_http: egress
                .client_builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("tokenvault-proxy/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("HTTP client builds"),
            rate_buckets: crate::access::policies::RateBuckets::default(),
            audit_queue: crate::audit::spawn_writer(store_for_audit, metrics.clone()),
            metrics,
            key_touches: Default::default(),
        });
        Vault::start_change_feed(Arc::downgrade(&vault), vault.store.clone());
        Ok(vault)
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.config.catalog
    }

    pub fn public_url(&self) -> &Url {
        &self.config.public_url
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Readiness: the database answers and all migrations are applied.
    pub async fn is_ready(&self) -> bool {
        self.store.is_ready().await
    }
}

impl Vault {
    /// Rotates the data key and re-seals every stored secret while the vault keeps serving.
    pub async fn rotate_keys(&self) -> Result<crate::RotationReport, ServiceError> {
        let resumed = self.start_key_rotation().await?;
        self.finish_key_rotation(resumed).await
    }

    /// First half of [`Vault::rotate_keys`]; exposed so tests can observe the vault mid-rotation.
    pub async fn start_key_rotation(&self) -> Result<bool, ServiceError> {
        self.keys.start_rotation().await
    }

    pub async fn finish_key_rotation(&self, resumed: bool) -> Result<crate::RotationReport, ServiceError> {
        self.keys.finish_rotation(self.config.rotation_batch_size, resumed).await
    }

    /// Writes a consistent copy of an SQLite database to `path` while serving (sealed values
    /// stay sealed: the copy is useless without the master key, which is backed up separately).
    /// The file is created here, new and 0600, so an existing file is never overwritten.
    pub async fn backup_to(&self, path: &std::path::Path) -> Result<(), ServiceError> {
        use std::os::unix::fs::OpenOptionsExt;
        let target = path
            .to_str()
            .ok_or_else(|| ServiceError::invalid("invalid_backup_path", "the backup path is not UTF-8"))?;
        if self.store.dialect() != tokenvault_store::Dialect::Sqlite {
            return Err(ServiceError::invalid("backup_not_supported", "back up PostgreSQL with pg_dump"));
        }
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| {
            ServiceError::invalid("backup_target_unusable", format!("cannot create {}: {e}", path.display()))
        })?;
        self.store.backup_sqlite_to(target).await.map_err(|e| match e {
            tokenvault_store::StoreError::UnsupportedUrl(why) => ServiceError::invalid("backup_not_supported", why),
            other => other.into(),
        })
    }

    pub async fn key_status(&self) -> Result<Vec<crate::KeyStatus>, ServiceError> {
        self.keys.status().await
    }
}
