//! The vault's use cases: everything tokenvault does, independent of HTTP.
//!
//! [`Vault`] is the entry point; each use case lives in its own module as an `impl Vault` block.
//! Time is read only through [`Clock`], so expiry logic can be tested by moving a clock.

mod admin_auth;
mod api_keys;
mod app_webhooks;
mod apps;
mod audit;
mod callback;
mod change_feed;
mod clock;
mod connect_sessions;
mod context;
mod disconnect;
mod egress;
mod error;
mod grants;
mod hot_cache;
mod ids;
mod json_objects;
mod installs;
mod key_manager;
mod lease_heartbeat;
mod managed_secrets;
mod metrics;
mod paging;
mod periodic;
mod policies;
mod provider_configs;
mod provider_webhooks;
mod proxy;
mod proxy_audit;
mod proxy_body;
mod proxy_headers;
mod proxy_target;
mod refresh;
mod refresh_persist;
mod refresher;
mod schedule;
mod secrets;
mod single_flight;
mod standard_webhooks;
mod timestamp;
mod urls;
mod vault;
mod whole_numbers;

pub use admin_auth::{AdminTokenInfo, MintedAdminToken};
pub use api_keys::{ApiKeyInfo, MintedApiKey};
pub use app_webhooks::{DeliveryReport, WebhookDeliveryView, WebhookEndpointInput, WebhookEndpointView};
pub use apps::{App, AppUpdate};
pub use audit::{AuditEventView, AuditQuery};
pub use callback::CallbackRedirect;
pub use clock::{Clock, ManualClock, SystemClock};
pub use connect_sessions::{
    BrowserError, ConnectSessionInput, ConnectSessionView, ConnectStart, CreatedConnectSession, FlowCookie,
};
pub use context::{Actor, CallContext};
pub use error::ServiceError;
pub use grants::{AccountView, GrantListQuery, GrantView};
pub use hot_cache::{CacheLimits, STALENESS_BOUND};
pub use ids::IdKind;
pub use installs::{ClaimInstallInput, ClaimedInstall, INSTALL_SWEEP_INTERVAL};
pub use key_manager::{KeyStatus, RotationReport};
pub use managed_secrets::{ManagedSecretInput, ManagedSecretView};
pub use metrics::{HttpLabels, Metrics};
pub use paging::PageSize;
pub use policies::{PolicyInput, PolicyRules, PolicyView};
pub use provider_configs::{ProviderConfigInput, ProviderConfigView};
pub use proxy::{BodyStream, ProxyLimits, ProxyRequest, ProxyResponse};
pub use refresh::{AccessToken, RefreshOutcome, RefreshTrigger};
pub use refresher::RefresherReport;
pub use standard_webhooks::sign as sign_standard_webhook;
pub use timestamp::Timestamp;
pub use vault::{AdminIdentity, Vault, VaultConfig};

pub use tokenvault_crypto::MasterKey;
pub use tokenvault_store::Store;
