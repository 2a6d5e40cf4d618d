//! Object ids: a kind prefix and a time-ordered UUIDv7, e.g. `app_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e`.
//! Time order makes ids usable as pagination cursors; the prefix makes a misplaced id obvious.

use crate::ServiceError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    App,
    ApiKey,
    AdminToken,
    ProviderConfig,
    ConnectSession,
    OAuthFlow,
    Grant,
    PendingInstall,
    WebhookEndpoint,
    WebhookDelivery,
    ProviderWebhook,
    Policy,
    AuditEvent,
    Agent,
    Delegation,
    Approval,
    ApprovalLink,
    Operator,
    OperatorSession,
    WalletSession,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::App => "app",
            IdKind::ApiKey => "key",
            IdKind::AdminToken => "adm",
            IdKind::ProviderConfig => "pcf",
            IdKind::ConnectSession => "cns",
            IdKind::OAuthFlow => "flw",
            IdKind::Grant => "grt",
            IdKind::PendingInstall => "ins",
            IdKind::WebhookEndpoint => "whe",
            IdKind::WebhookDelivery => "whd",
            IdKind::ProviderWebhook => "pwh",
            IdKind::Policy => "pol",
            IdKind::AuditEvent => "aud",
            IdKind::Agent => "agt",
            IdKind::Delegation => "dlg",
            IdKind::Approval => "apr",
            IdKind::ApprovalLink => "apl",
            IdKind::Operator => "opr",
            IdKind::OperatorSession => "ops",
            IdKind::WalletSession => "wls",
        }
    }

    fn label(self) -> &'static str {
        match self {
            IdKind::App => "app",
            IdKind::ApiKey => "api key",
            IdKind::AdminToken => "admin token",
            IdKind::ProviderConfig => "provider configuration",
            IdKind::ConnectSession => "connect session",
            IdKind::OAuthFlow => "flow",
            IdKind::Grant => "grant",
            IdKind::PendingInstall => "install",
            IdKind::WebhookEndpoint => "webhook endpoint",
            IdKind::WebhookDelivery => "webhook delivery",
            IdKind::ProviderWebhook => "provider webhook",
            IdKind::Policy => "policy",
            IdKind::AuditEvent => "audit event",
            IdKind::Agent => "agent",
            IdKind::Delegation => "delegation",
            IdKind::Approval => "approval",
            IdKind::ApprovalLink => "approval link",
            IdKind::Operator => "operator",
            IdKind::OperatorSession => "operator session",
            IdKind::WalletSession => "wallet session",
        }
    }

    pub fn generate(self) -> String {
        format!("{}_{}", self.prefix(), uuid::Uuid::now_v7().simple())
    }

    /// Checks that `text` is a well-formed id of this kind. A malformed id is a client error
    /// (400 `invalid_id`), distinct from a well-formed id that does not exist (404).
    pub fn parse(self, text: &str) -> Result<String, ServiceError> {
        let well_formed = text.strip_prefix(self.prefix()).and_then(|rest| rest.strip_prefix('_')).is_some_and(|hex| {
            hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if well_formed {
            Ok(text.to_owned())
        } else {
            Err(ServiceError::invalid(
                "invalid_id",
                format!(
                    "`{}` is not a valid {} id (expected `{}_` followed by 32 hex digits)",
                    truncate(text),
                    self.label(),
                    self.prefix()
                ),
            ))
        }
    }
}

fn truncate(text: &str) -> String {
    let shown: String = text.chars().take(48).collect();
    if shown.len() < text.len() { format!("{shown}…") } else { shown }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_sort_by_time() {
        let a = IdKind::App.generate();
        let b = IdKind::App.generate();
        assert!(IdKind::App.parse(&a).is_ok());
        assert!(a < b);
    }

    #[test]
    fn wrong_prefix_or_shape_is_invalid() {
        let key = IdKind::ApiKey.generate();
        assert!(IdKind::App.parse(&key).is_err());
        assert!(IdKind::App.parse("app_xyz").is_err());
        assert!(IdKind::App.parse("app_0192F7C4E6A87B3C9D1E2F3A4B5C6D7E").is_err());
        assert!(IdKind::App.parse("").is_err());
    }
}
