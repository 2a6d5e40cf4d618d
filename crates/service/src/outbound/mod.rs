//! What the vault sends out on its own: webhooks to apps (outbox, signing, delivery), and the
//! egress guard that every outbound call passes.

pub(crate) mod app_webhooks;
pub(crate) mod egress;
pub(crate) mod standard_webhooks;
