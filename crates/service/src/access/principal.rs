//! Who an authenticated API key is: its app, the agent it belongs to (an agent key), and what it
//! may do. Resolved once at the edge and carried in the call's context, so every rule that
//! depends on the caller (scopes, delegations, per-agent policies, the audit row's verified
//! identity) reads the same answer.

use crate::ServiceError;
use crate::access::scopes::{Required, ScopeSet};

#[derive(Debug, Clone)]
pub struct KeyPrincipal {
    pub key_id: String,
    pub app_id: String,
    /// Set for an agent key: the agent's verified id. Such a key reaches only grants delegated
    /// to this agent.
    pub agent_id: Option<String>,
    pub scopes: ScopeSet,
    /// The key's own expiry (a key minted by this one may not outlive it).
    pub expires_at: Option<i64>,
    /// The addresses the key may be used from (`None`: anywhere).
    pub allowed_cidrs: Option<Vec<String>>,
    /// Set for a derived key: the key it was derived from.
    pub parent_id: Option<String>,
}

impl KeyPrincipal {
    /// 403 `insufficient_scope` unless the key holds what `required` names.
    pub fn require(&self, required: Required) -> Result<(), ServiceError> {
        self.scopes.check(required)
    }
}
