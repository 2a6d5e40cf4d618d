//! Prometheus metrics of one vault, served at `GET /metrics`.
//!
//! A registry per vault rather than a process-wide recorder: several vaults in one process (the
//! tests) keep their counts apart. Labels are bounded by construction: route templates (never a
//! path with ids), provider ids from the catalog, status codes, error codes, grant states. No
//! secret, id or end user ever becomes a label. Gauges that describe stored state (grants by
//! status, the webhook outbox) are read from the database when the metrics are scraped.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::{ServiceError, Vault};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route template, e.g. `/v1/grants/{id}/token`.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    provider: String,
    /// `ok`, or the machine-readable error code.
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabels {
    provider: String,
    /// The provider's status code, or `none` when the call stopped before an answer.
    upstream_status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    /// `api_keys`, `grants` (grants and managed secrets) or `policies`.
    cache: &'static str,
    /// `hit` or `miss` (a miss reads the database).
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs to ~100 s.
    Histogram::new(exponential_buckets(0.0001, 2.5, 16))
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Histograms<RouteLabels>,
    token_fetches: Family<OutcomeLabels, Counter>,
    refreshes: Family<OutcomeLabels, Counter>,
    refresh_seconds: Histograms<ProviderLabels>,
    proxy_calls: Family<ProxyLabels, Counter>,
    proxy_added_seconds: Histograms<ProviderLabels>,
    grants: Family<StatusLabels, Gauge>,
    audit_queue_depth: Gauge,
    audit_write_seconds: Histogram,
    webhook_outbox_depth: Gauge,
    webhook_oldest_pending_seconds: Gauge<f64, AtomicU64>,
    db_connections: Family<PoolLabels, Gauge>,
    cache_lookups: Family<CacheLabels, Counter>,
    cache_entries: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tokenvault");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route template, method and status", http_requests.clone());
        let http_seconds: Histograms<RouteLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "time to the response head, by route template",
            http_seconds.clone(),
        );
        let token_fetches = Family::<OutcomeLabels, Counter>::default();
        registry.register("token_fetches", "access tokens asked for, by provider and outcome", token_fetches.clone());
        let refreshes = Family::<OutcomeLabels, Counter>::default();
        registry.register("refreshes", "refresh attempts at providers, by provider and outcome", refreshes.clone());
        let refresh_seconds: Histograms<ProviderLabels> = Family::new_with_constructor(latency_histogram);
        registry.register("refresh_duration_seconds", "time of a refresh at the provider", refresh_seconds.clone());
        let proxy_calls = Family::<ProxyLabels, Counter>::default();
        registry.register("proxy_calls", "proxied calls by provider and upstream status", proxy_calls.clone());
        let proxy_added_seconds: Histograms<ProviderLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "proxy_added_latency_seconds",
            "time the vault adds to a proxied call before the provider's answer (the call's time minus the provider's)",
            proxy_added_seconds.clone(),
        );
        let grants = Family::<StatusLabels, Gauge>::default();
        registry.register("grants", "stored grants by status", grants.clone());
        let audit_queue_depth = Gauge::default();
        registry.register("audit_queue_depth", "audit rows waiting to be written", audit_queue_depth.clone());
        let audit_write_seconds = latency_histogram();
        registry.register("audit_write_duration_seconds", "time of one audit batch write", audit_write_seconds.clone());
        let webhook_outbox_depth = Gauge::default();
        registry.register(
            "webhook_outbox_depth",
            "app webhook deliveries not yet delivered",
            webhook_outbox_depth.clone(),
        );
        let webhook_oldest_pending_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "webhook_delivery_lag_seconds",
            "age of the oldest app webhook delivery still pending",
            webhook_oldest_pending_seconds.clone(),
        );
        let db_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_connections",
            "database pool connections by state (in_use, idle)",
            db_connections.clone(),
        );
        let cache_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "hot-path cache lookups by cache and result (hit, or miss: read from the database)",
            cache_lookups.clone(),
        );
        let cache_entries = Gauge::default();
        registry.register("cache_entries", "entries held by the hot-path caches", cache_entries.clone());
        Self {
            cache_lookups,
            cache_entries,
            registry,
            http_requests,
            http_seconds,
            token_fetches,
            refreshes,
            refresh_seconds,
            proxy_calls,
            proxy_added_seconds,
            grants,
            audit_queue_depth,
            audit_write_seconds,
            webhook_outbox_depth,
            webhook_oldest_pending_seconds,
            db_connections,
        }
    }
}

impl Metrics {
    /// One HTTP request answered (the HTTP layer calls this with the route template).
    pub fn http_request(&self, labels: HttpLabels, elapsed: Duration) {
        self.http_seconds.get_or_create(&RouteLabels { route: labels.route.clone() }).observe(elapsed.as_secs_f64());
        self.http_requests.get_or_create(&labels).inc();
    }

    pub(crate) fn token_fetch(&self, provider: &str, outcome: &str) {
        self.token_fetches.get_or_create(&OutcomeLabels { provider: provider.into(), outcome: outcome.into() }).inc();
    }

    pub(crate) fn refresh(&self, provider: &str, outcome: &str, elapsed: Duration) {
        self.refreshes.get_or_create(&OutcomeLabels { provider: provider.into(), outcome: outcome.into() }).inc();
        self.refresh_seconds
            .get_or_create(&ProviderLabels { provider: provider.into() })
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn proxy_call(&self, provider: &str, upstream_status: Option<u16>, added: Option<Duration>) {
        let upstream_status = upstream_status.map_or_else(|| "none".to_owned(), |s| s.to_string());
        self.proxy_calls.get_or_create(&ProxyLabels { provider: provider.into(), upstream_status }).inc();
        if let Some(added) = added {
            self.proxy_added_seconds
                .get_or_create(&ProviderLabels { provider: provider.into() })
                .observe(added.as_secs_f64());
        }
    }

    /// The counter of one cache's hits or misses (the cache keeps it and counts itself).
    pub(crate) fn cache_counter(&self, cache: &'static str, hit: bool) -> Counter {
        self.cache_lookups.get_or_create(&CacheLabels { cache, result: if hit { "hit" } else { "miss" } }).clone()
    }

    pub(crate) fn audit_write(&self, elapsed: Duration) {
        self.audit_write_seconds.observe(elapsed.as_secs_f64());
    }
}

impl Vault {
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `GET /metrics` is open unless a metrics token is configured; then it needs that bearer
    /// (compared in constant time).
    pub fn authorize_metrics(&self, presented: Option<&str>) -> Result<(), ServiceError> {
        use secrecy::ExposeSecret;
        use subtle::ConstantTimeEq;
        let Some(expected) = &self.config.metrics_token else { return Ok(()) };
        match presented {
            Some(p) if bool::from(p.as_bytes().ct_eq(expected.expose_secret().as_bytes())) => Ok(()),
            _ => Err(ServiceError::Unauthenticated {
                code: "invalid_metrics_token",
                message: "GET /metrics needs the metrics token as a bearer token",
            }),
        }
    }

    /// The metrics in the text exposition format, with the stored-state gauges read now.
    pub async fn render_metrics(&self) -> Result<String, ServiceError> {
        let m = &self.metrics;
        let by_status = self.store.count_grants_by_status().await?;
        for status in ["active", "needs_reauth", "revoke_failed", "revoked"] {
            let count = by_status.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
            m.grants.get_or_create(&StatusLabels { status: status.into() }).set(count);
        }
        let (depth, oldest) = self.store.webhook_outbox_state(self.now().as_millis()).await?;
        m.webhook_outbox_depth.set(depth);
        m.webhook_oldest_pending_seconds.set(oldest.map_or(0.0, |ms| ms as f64 / 1000.0));
        m.audit_queue_depth.set(self.audit_queue.depth() as i64);
        m.cache_entries.set(self.cache.entries() as i64);
        let (size, idle) = self.store.pool_state();
        m.db_connections.get_or_create(&PoolLabels { state: "in_use" }).set(i64::from(size) - idle as i64);
        m.db_connections.get_or_create(&PoolLabels { state: "idle" }).set(idle as i64);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry)
            .map_err(|_| ServiceError::Internal("metrics could not be encoded".into()))?;
        Ok(text)
    }
}
