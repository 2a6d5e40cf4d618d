//! Using a grant: an access token handed to the app, or a call made for it through the proxy
//! (OAuth grants and managed secrets alike).

pub(crate) mod approvals;
pub(crate) mod base_urls;
pub(crate) mod managed_secrets;
pub(crate) mod proxy;
pub(crate) mod token;
