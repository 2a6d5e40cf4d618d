//! The egress guard as the use cases apply it: URLs the vault will call are checked when they are
//! stored (an early, clear 400 naming the host and why), and every call is checked again when it
//! is dialled (the outbound clients resolve through the guard; IP literals are checked before
//! each send), which is what defeats a name that later resolves elsewhere. The policy itself
//! lives in the providers crate ([`tokenvault_providers::EgressPolicy`]).

use tokenvault_providers::EgressDenied;
use url::Url;

use crate::{ServiceError, Vault};

/// What an operator can do about a refusal; the same words at creation and at dial time.
const WHY: &str = "the vault does not call loopback, private, link-local or other non-public addresses \
    unless its operator allows them (--allow-private-egress, --egress-allow-cidr)";

/// A refused URL in a request body (HTTP 400).
pub(crate) fn refused_input(field: &str, denied: &dyn std::fmt::Display) -> ServiceError {
    ServiceError::invalid("destination_not_allowed", format!("`{field}`: {denied}; {WHY}"))
}

/// A refused destination met while calling it (HTTP 502: the vault will not go there).
pub(crate) fn refused_call(what: &str) -> ServiceError {
    ServiceError::Gateway { status: 502, code: "destination_not_allowed", message: format!("{what}; {WHY}") }
}

impl Vault {
    /// Refuses a URL about to be stored whose host is, or now resolves to, an address the egress
    /// guard refuses. A name that does not resolve yet is accepted: dialling it is still guarded.
    pub(crate) async fn check_destination(&self, field: &str, url: &Url) -> Result<(), ServiceError> {
        self.config.egress.check_destination(url).await.map_err(|denied| refused_input(field, &denied))
    }

    /// A URL the vault will call, from a request body: the egress guard's verdict first (it is
    /// the one that matters: `http://0.0.0.0` is refused for where it goes, not for its scheme),
    /// then the rules of [`crate::values::urls::parse_browser_url`].
    pub(crate) async fn parse_called_url(&self, field: &'static str, text: &str) -> Result<Url, ServiceError> {
        if text.chars().count() <= 2048
            && let Ok(url) = Url::parse(text)
        {
            self.check_destination(field, &url).await?;
        }
        crate::values::urls::parse_browser_url(field, text)
    }

    /// The dial-time check of an IP-literal host (names are judged by the clients' resolver).
    pub(crate) fn check_dial(&self, url: &Url) -> Result<(), EgressDenied> {
        self.config.egress.check_url(url)
    }
}
