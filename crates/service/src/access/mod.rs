//! Authorization: who is calling and what they may do. API keys and admin tokens prove who calls;
//! policies decide, on every token retrieval and proxied call, whether this access is allowed.

pub(crate) mod admin_auth;
pub(crate) mod api_keys;
pub(crate) mod policies;
pub(crate) mod request;
