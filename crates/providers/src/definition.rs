//! The shape of a provider definition file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderDefinition {
    pub id: String,
    pub display_name: String,
    pub category: String,
    #[serde(default)]
    pub docs_url: Option<Url>,
    pub default_environment: String,
    #[serde(default)]
    pub environments: BTreeMap<String, Endpoints>,
    pub authorize: AuthorizeRules,
    pub token: TokenRules,
    pub revoke: RevokeRules,
    pub identity: IdentityRules,
    #[serde(default)]
    pub scopes: Vec<ScopeOption>,
    #[serde(default)]
    pub scope_policy: ScopePolicy,
    /// A new authorization by the same user and client kills the previous tokens (Zoom 4741).
    #[serde(default)]
    pub reauthorization_invalidates_previous: bool,
    /// The provider starts installs from its own dashboard at a partner `install_uri` (Aircall).
    #[serde(default)]
    pub supports_install_uri: bool,
    /// Endpoints come from each provider configuration (the generic `custom` provider).
    #[serde(default)]
    pub configured_endpoints: bool,
    /// How the provider calls the vault back, if it does.
    #[serde(default)]
    pub inbound_webhooks: Option<InboundWebhooks>,
}

/// Provider-to-vault webhooks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InboundWebhooks {
    /// Zoom: HMAC-SHA256 signed (`x-zm-signature`), with `endpoint.url_validation` and
    /// `app_deauthorized` events; the secret token comes from the provider configuration.
    ZoomSigned,
    /// Aircall: the vault creates a webhook per account; each event carries that webhook's token.
    AircallToken,
}

/// Where a provider lives, for one environment (Dialpad: `production` and `sandbox`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    pub authorize_url: Url,
    pub token_url: Url,
    #[serde(default)]
    pub revoke_url: Option<Url>,
    #[serde(default)]
    pub identity_url: Option<Url>,
    /// The API a credential may be sent to (the proxy's upstream).
    #[serde(default)]
    pub api_base_url: Option<Url>,
    /// A token-response field that names the API base for this grant (Zoom's `api_url`).
    #[serde(default)]
    pub api_base_url_field: Option<String>,
    /// Hosts (or host suffixes) a token-response API base may point to.
    #[serde(default)]
    pub allowed_api_host_suffixes: Vec<String>,
    #[serde(default)]
    pub webhooks_url: Option<Url>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRules {
    /// How the user reaches the provider's consent page.
    pub method: AuthorizeMethod,
    pub scope_style: ScopeStyle,
    #[serde(default)]
    pub fixed_scope: Option<String>,
    pub pkce: PkceSupport,
}

/// How the authorization request is made. Only a browser redirect with a GET query (RFC 6749
/// §4.1.1) is supported; naming it makes a definition that needs anything else (a form POST,
/// pushed authorization requests) fail to load instead of silently behaving differently.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizeMethod {
    /// `302`/`303` to `authorize_url?response_type=code&...`.
    RedirectGet,
}

/// How the authorize URL carries scopes.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScopeStyle {
    /// `scope=a b c` (RFC 6749 §3.3).
    SpaceSeparated,
    /// Always the one value in `fixed_scope` (Aircall: `public_api`).
    Fixed,
    /// No `scope` parameter at all (Zoom: scopes come from the app's settings).
    None,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PkceSupport {
    /// PKCE with an explicit `code_challenge_method=S256`.
    S256,
    None,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRules {
    /// What the provider accepts at its token endpoint.
    pub client_auth: ClientAuthSupport,
    /// With `client_auth = "either"`: the style the vault sends. Ignored when `client_auth`
    /// names one style, so an override can pin `basic` or `body` outright.
    #[serde(default)]
    pub preferred_client_auth: Option<ClientAuth>,
    pub encoding: TokenEncoding,
    pub send_redirect_uri: bool,
    pub expires_in: ExpiresInStyle,
    /// Upper bound on any computed expiry, so a wrong value cannot stop refreshes for years.
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
    /// Assumed lifetime when a refreshable token comes without `expires_in`.
    #[serde(default = "default_assumed_lifetime")]
    pub assumed_lifetime_seconds: u64,
    pub refresh: RefreshStyle,
    /// Without this scope granted, no refresh token is issued (Dialpad `offline_access`).
    #[serde(default)]
    pub refresh_requires_scope: Option<String>,
    /// Refresh tokens die after this long unused (Zoom: ~90 days).
    #[serde(default)]
    pub refresh_token_idle_lifetime_seconds: Option<u64>,
    /// How long a rotated-out refresh token keeps working at the provider (a documented grace
    /// period; none for Zoom). Within it, a refresh whose answer was lost may be sent again as
    /// often as needed; past it, a lost answer is retried once, never more (quirk 11).
    #[serde(default)]
    pub rotation_grace_seconds: Option<u64>,
}

fn default_assumed_lifetime() -> u64 {
    3600
}

impl TokenRules {
    /// The client authentication the vault uses at this provider's token endpoint.
    pub fn client_auth_used(&self) -> Option<ClientAuth> {
        match self.client_auth {
            ClientAuthSupport::Basic => Some(ClientAuth::Basic),
            ClientAuthSupport::Body => Some(ClientAuth::Body),
            ClientAuthSupport::Either => self.preferred_client_auth,
        }
    }
}

/// The client authentication styles a provider's token endpoint accepts.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthSupport {
    Basic,
    Body,
    /// Both are accepted (Dialpad); `preferred_client_auth` says which the vault sends.
    Either,
}

/// Where the vault puts client credentials at the token endpoint.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic, id and secret form-urlencoded before base64 (RFC 6749 §2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Body,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenEncoding {
    Form,
    Json,
}

/// How to read `expires_in`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExpiresInStyle {
    /// A lifetime in seconds (RFC 6749 §5.1).
    Seconds,
    /// Seconds, unless larger than 10^9: then an absolute Unix time (Dialpad's guide sample).
    SecondsOrEpoch,
    /// The provider sends no expiry: the token is permanent (Aircall).
    Absent,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RefreshStyle {
    None,
    Standard,
    /// Each refresh returns a new refresh token and kills the old one at once.
    Rotating,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRules {
    pub style: RevokeStyle,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RevokeStyle {
    /// `POST revoke_url` with `Authorization: Bearer <access token>` and an empty body (Dialpad).
    BearerAccessToken,
    /// RFC 7009: `POST revoke_url`, client auth, form `token=` (Zoom, generic).
    Rfc7009,
    /// Delete the vault's webhooks, then `POST /v1/integrations/disable` with the Bearer token.
    AircallDisable,
    None,
}

/// JSON pointers (RFC 6901) into the "who am I" response. Each may list fallbacks.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRules {
    pub account_id: PointerList,
    #[serde(default)]
    pub user_id: Option<PointerList>,
    #[serde(default)]
    pub display_name: Option<PointerList>,
    #[serde(default)]
    pub email: Option<PointerList>,
    #[serde(default)]
    pub company_id: Option<PointerList>,
}

/// One JSON pointer or several tried in order.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PointerList {
    One(String),
    Many(Vec<String>),
}

impl PointerList {
    pub fn pointers(&self) -> Vec<&str> {
        match self {
            PointerList::One(p) => vec![p.as_str()],
            PointerList::Many(ps) => ps.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScopeOption {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScopePolicy {
    /// Whether a provider configuration chooses scopes at all.
    #[serde(default = "yes")]
    pub configurable: bool,
    /// Any scope string is accepted (generic providers), not only the listed ones.
    #[serde(default)]
    pub free_form: bool,
    /// Shown when scopes cannot be configured.
    #[serde(default)]
    pub explanation: Option<String>,
}

impl Default for ScopePolicy {
    fn default() -> Self {
        Self { configurable: true, free_form: false, explanation: None }
    }
}

fn yes() -> bool {
    true
}
