//! The audit log: every token retrieval, proxied call, policy decision, connect, refresh,
//! revoke and configuration change, with app, grant, end user, provider, actor and request id.
//! Never a secret, token, body or query value (a proxied path is recorded with its query keys
//! only). `entry` says what a row holds, `writer` how rows reach the database, `log` how apps
//! read them back and how long they are kept.

pub(crate) mod entry;
mod log;
pub(crate) mod stats;
mod writer;

pub(crate) use entry::{AuditEntry, error_code, outcome_of, path_without_values};
pub use log::{AuditEventView, AuditFormat, AuditQuery};
pub(crate) use writer::{AuditQueue, AuditSink, Reserved, spawn_writer};
