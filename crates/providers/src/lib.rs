//! How OAuth providers really behave, as data, and the one client that speaks to all of them.
//!
//! Each provider is a TOML definition embedded in the binary (`catalog/*.toml`): endpoints per
//! environment, how scopes and PKCE are sent, client authentication, body encoding, how to read
//! `expires_in`, refresh and revocation styles, and where the account identity sits in the
//! "who am I" response. An operator may add or override definitions from a directory; that is
//! also the only way the vault ever reaches a non-production host (such as the test fakes).
//! Every outbound call, here and in the service layer, goes through the egress guard
//! ([`EgressPolicy`]), which keeps the vault from calling into its own network.
//!
//! The token client is ours rather than a generic OAuth crate's, because the providers' quirks
//! (JSON token bodies, epoch `expires_in`, missing `token_type`, rotating refresh tokens whose
//! loss must be detected) are exactly what generic clients get wrong.

mod catalog;
mod client_auth;
mod definition;
mod discovery;
mod egress;
mod error;
mod expiry;
mod http_client;
mod identity;
mod pkce;
mod resolved;
mod revoke;
mod token_client;
mod token_response;
mod webhooks;

pub use catalog::{Catalog, CatalogError};
pub use definition::{
    ClientAuth, Endpoints, ExpiresInStyle, IdentityRules, InboundWebhooks, PkceSupport, ProviderDefinition,
    RefreshStyle, RevokeStyle, ScopeOption, ScopePolicy, ScopeStyle, TokenEncoding,
};
pub use discovery::{DiscoveredProvider, discover};
pub use egress::{AddressClass, EgressDenied, EgressPolicy, IpNet, Refusal, classify, parse_cidr};
pub use error::{ProviderError, call_site};
pub use http_client::ProviderHttp;
pub use identity::Identity;
pub use pkce::{Pkce, code_challenge_s256};
pub use resolved::{ClientCredentials, CustomEndpoints, ResolvedProvider};
pub use token_response::TokenSet;
pub use webhooks::CreatedWebhook;
