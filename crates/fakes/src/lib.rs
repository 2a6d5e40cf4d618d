//! Faithful emulators of the OAuth providers tokenvault talks to (Dialpad, Zoom, Aircall) and of a
//! generic standards-compliant OAuth 2.0/OIDC server, served over real HTTP on loopback.
//!
//! They enforce what the real providers enforce (code lifetimes, single-use codes, PKCE, client
//! authentication style, body encoding, exact redirect matching, rotating refresh tokens, error
//! bodies), and every undocumented guess is a switchable [`Variant`]. Tests drive them through
//! [`Control`] (in process) or the JSON control API (see README.md).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use tokenvault_fakes::{ClientRegistration, Fakes, Provider};
//! let fakes = Fakes::start().await?;
//! fakes.control().register_client(Provider::Zoom, ClientRegistration {
//!     client_id: "id".into(),
//!     client_secret: "secret".into(),
//!     redirect_uris: vec!["http://127.0.0.1:8080/cb".into()],
//!     scopes: vec!["user:read:user".into()],
//!     install_uri: None,
//! });
//! println!("authorize at {}/oauth/authorize", fakes.urls().zoom_oauth);
//! # Ok(()) }
//! ```

// Helpers return `Result<_, Response>` so a failure is already the provider-shaped HTTP answer;
// the error path is cold and boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod aircall;
mod authorize;
mod bearer;
mod client_auth;
mod clock;
mod control;
mod control_http;
mod dialpad;
mod echo;
mod evil;
mod fakes;
mod fault;
mod generic;
mod grant;
mod inspect;
mod jwt;
mod model;
mod params;
mod pkce;
mod provider;
mod random;
mod responses;
mod server;
mod state;
mod token_log;
mod tokens;
mod urls;
mod variant;
mod vault_catalog;
mod webhooks;
mod zoom;

pub use control::{CallCount, Control};
pub use fakes::{Fakes, FakesOptions};
pub use fault::{Endpoint, Fault};
pub use inspect::{RecordedRequest, TokenRequestLog};
pub use model::{ClientRegistration, ConsentMode, FakeUser};
pub use pkce::s256 as pkce_s256;
pub use provider::{Host, Provider};
pub use state::AircallWebhook;
pub use urls::FakeUrls;
pub use variant::{
    BodyEncoding, ClientAuthMode, ExpiresInMode, IdFormat, IssResponse, ProviderLifetimes, RateLimit, Variant,
    Variants, ZoomApiUrl,
};
pub use vault_catalog::vault_catalog_overrides;
pub use webhooks::{zoom_sign, zoom_url_validation_event, zoom_url_validation_response};
