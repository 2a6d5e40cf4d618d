//! Persistence for tokenvault: one schema, two databases.
//!
//! SQLite (embedded, the single-machine default) and PostgreSQL (several vault instances) are
//! reached through sqlx's runtime-generic `Any` driver. The schema only uses types both share
//! (text, 64-bit integers, blobs), so one set of queries serves both; where the dialects really
//! differ (locking, transaction start) [`Dialect`] says so. Each backend has its own in-tree
//! migrations, and one conformance suite runs every store test against both.

mod admin_tokens;
mod agents;
mod api_keys;
mod approvals;
mod apps;
mod audit;
mod changes;
mod connect_sessions;
mod db;
mod encryption_keys;
mod error;
mod grant_lifecycle;
mod grants;
mod json_list;
mod managed_secrets;
mod oauth_flows;
mod operators;
mod pending_installs;
mod policies;
mod provider_configs;
mod provider_webhooks;
mod sealed_columns;
mod stats;
mod wallet_sessions;
mod webhook_outbox;

pub use admin_tokens::AdminTokenRecord;
pub use agents::{AgentRecord, DelegationRecord};
pub use api_keys::ApiKeyRecord;
pub use approvals::{ApprovalFilter, ApprovalLinkRecord, ApprovalRecord, ExecutionEnd};
pub use apps::{AppRecord, Branding};
pub use audit::{AuditFilter, AuditRecord};
pub use changes::{ChangeKind, ChangeListener, ChangeRow};
pub use connect_sessions::{ConnectSessionRecord, SessionOutcome};
pub use db::{Dialect, Store};
pub use encryption_keys::{EncryptionKeyRecord, KeyState};
pub use error::StoreError;
pub use grant_lifecycle::{DueGrant, RefreshHold, RefreshedTokens, SPENT_TOKEN_REASONS};
pub use grants::{GrantFilter, GrantRecord};
pub use managed_secrets::ManagedSecretRecord;
pub use oauth_flows::OAuthFlowRecord;
pub use operators::{OperatorRecord, OperatorSessionRecord};
pub use pending_installs::PendingInstallRecord;
pub use policies::PolicyRecord;
pub use provider_configs::ProviderConfigRecord;
pub use provider_webhooks::ProviderWebhookRecord;
pub use sealed_columns::{SEALED_COLUMNS, SealedColumn, SealedValue};
pub use stats::{AppGrantCount, AuditActionCount, ProxyHourCount};
pub use wallet_sessions::WalletSessionRecord;
pub use webhook_outbox::{WebhookDeliveryRecord, WebhookEndpointRecord};

/// Unix time in milliseconds, the only time representation the store knows.
pub type Millis = i64;
