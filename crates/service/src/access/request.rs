//! What a caller asks to do and on what: the input of every policy decision, and what the audit
//! row of that decision records. Kept apart from the policies so the audit log can describe an
//! access without depending on how it is decided.

use tokenvault_store::GrantRecord;

/// What is being accessed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Access<'a> {
    Token,
    Proxy { method: &'a str, path: &'a str },
}

/// Where policies are looked up for one access.
#[derive(Debug, Clone)]
pub(crate) struct PolicyScope {
    pub app_id: String,
    pub provider_config_id: Option<String>,
    pub grant_id: String,
    pub end_user_id: Option<String>,
    pub provider: String,
    pub connected_at: i64,
    /// The delegation an agent's call goes through, if any.
    pub delegation_id: Option<String>,
}

impl PolicyScope {
    pub(crate) fn of_grant(grant: &GrantRecord) -> Self {
        Self {
            app_id: grant.app_id.clone(),
            provider_config_id: Some(grant.provider_config_id.clone()),
            grant_id: grant.id.clone(),
            end_user_id: Some(grant.end_user_id.clone()),
            provider: grant.provider.clone(),
            connected_at: grant.connected_at,
            delegation_id: None,
        }
    }

    /// Whether `policy` applies here: the app's own, this configuration's, or this grant's.
    pub(crate) fn is_targeted_by(&self, policy: &tokenvault_store::PolicyRecord) -> bool {
        match policy.target_type.as_str() {
            "app" => true,
            "provider_config" => self.provider_config_id.as_deref() == Some(policy.target_id.as_str()),
            "grant" => policy.target_id == self.grant_id,
            "delegation" => self.delegation_id.as_deref() == Some(policy.target_id.as_str()),
            _ => false,
        }
    }
}
