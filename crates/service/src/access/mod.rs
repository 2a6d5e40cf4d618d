//! Authorization: who is calling and what they may do. API keys (an app's, or an agent's) and
//! admin tokens prove who calls; a key's scopes say which operations it may call; delegations
//! say which grants an agent may use and how; policies decide, on every token retrieval and
//! proxied call, whether this access is allowed.

pub(crate) mod admin_auth;
pub(crate) mod agents;
pub(crate) mod api_keys;
pub(crate) mod delegations;
pub(crate) mod policies;
pub(crate) mod principal;
pub(crate) mod request;
pub(crate) mod scopes;
pub(crate) mod wallet;
