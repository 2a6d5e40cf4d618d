//! The vault's use cases: everything tokenvault does, independent of HTTP.
//!
//! [`Vault`] is the entry point; each use case is an `impl Vault` block in the folder of its flow:
//!
//! - `connect/`: an end user connects an account (connect sessions, the OAuth callback, installs
//!   that start at the provider).
//! - `lifecycle/`: a grant from storage to revocation (refresh, the background refresher, its
//!   schedule and lease, disconnect, webhooks from providers).
//! - `access/`: who may do what (API keys, admin tokens, policies and their decisions).
//! - `usage/`: using a grant (token retrieval, the proxy, managed secrets).
//! - `audit/`: the audit log (entries, the batched writer, queries and retention).
//! - `admin/`: configuration (apps, provider configurations, the data key ring).
//! - `outbound/`: what the vault sends out (webhooks to apps, the egress guard on every dial).
//! - `cache/`: the hot-path caches and the change feed that keeps them coherent across instances.
//! - `values/`: small value types and input readers shared by all (ids, times, pages, URLs, secrets).
//!
//! Dependencies between modules go one way (a test checks there are no import cycles). Time is
//! read only through [`Clock`], so expiry logic can be tested by moving a clock.

mod access;
mod admin;
mod audit;
mod cache;
mod clock;
mod connect;
mod context;
mod error;
mod lifecycle;
mod metrics;
mod outbound;
mod periodic;
mod usage;
mod values;
mod vault;

pub use access::admin_auth::{AdminTokenInfo, MintedAdminToken};
pub use access::agents::{AgentInput, AgentUpdate, AgentView};
pub use access::api_keys::{AGENT_SCOPES, ApiKeyInfo, ApiKeyInput, MintedApiKey, RotateInput};
pub use access::delegations::{DelegationInput, DelegationView};
pub use access::policies::{ApprovalRule, PolicyInput, PolicyRules, PolicyView};
pub use access::principal::KeyPrincipal;
pub use access::scopes::{Action, Level, Required, Resource, Scope, ScopeSet};
pub use access::wallet::{
    CreatedWalletSession, OpenedWallet, WalletConnection, WalletDelegation, WalletSession, WalletSessionInput,
    WalletView,
};
pub use admin::apps::{App, AppBranding, AppUpdate, BrandingUpdate};
pub use admin::key_manager::{KeyStatus, RotationReport};
pub use admin::operators::{NewOperatorSession, OPERATOR_ROLES, OperatorInput, OperatorSession, OperatorView};
pub use admin::provider_configs::{ProviderConfigInput, ProviderConfigView};
pub use audit::stats::{
    AppNeedingReauth, GRANT_STATUSES, PortalStats, ProviderTraffic, RefreshCount, STATS_HOURS, StatusCount,
};
pub use audit::{AuditEventView, AuditFormat, AuditQuery};
pub use cache::hot_cache::{CacheLimits, STALENESS_BOUND};
pub use clock::{Clock, ManualClock, SystemClock};
pub use connect::callback::CallbackRedirect;
pub use connect::installs::{ClaimInstallInput, ClaimedInstall, INSTALL_SWEEP_INTERVAL};
pub use connect::sessions::{
    BrowserError, ConnectLanding, ConnectSessionInput, ConnectSessionView, ConnectStart, CreatedConnectSession,
    FlowCookie, LandingProvider,
};
pub use context::{Actor, CallContext};
pub use error::ServiceError;
pub use lifecycle::grants::{AccountView, GrantListQuery, GrantView};
pub use lifecycle::refresh::{RefreshOutcome, RefreshTrigger};
pub use lifecycle::refresher::RefresherReport;
pub use metrics::{HttpLabels, Metrics};
pub use outbound::app_webhooks::{
    DeliveryReport, RotateSecretInput, WebhookDeliveryView, WebhookEndpointInput, WebhookEndpointView,
};
pub use outbound::standard_webhooks::sign as sign_standard_webhook;
pub use usage::approvals::decide::{ApprovalDecisionInput, ApprovalLinkInput, ApprovalLinkView, LinkedApproval};
pub use usage::approvals::execute::{ApprovalResult, MAX_RESULT_BYTES};
pub use usage::approvals::{APPROVAL_STATUSES, ApprovalListQuery, ApprovalView, MAX_WAIT_SECONDS};
pub use usage::managed_secrets::{ManagedSecretInput, ManagedSecretView};
pub use usage::proxy::{BodyStream, ProxyLimits, ProxyOutcome, ProxyRequest, ProxyResponse, read_capped};
pub use usage::token::AccessToken;
pub use values::ids::IdKind;
pub use values::paging::PageSize;
pub use values::secrets::constant_time_eq;
pub use values::timestamp::Timestamp;
pub use vault::{AdminIdentity, Vault, VaultConfig};

pub use tokenvault_crypto::MasterKey;
pub use tokenvault_store::Store;
