//! Switchable behaviour: every documented variant and every [GUESS] in the provider facts.
//!
//! `Variants` is the current setting of everything; `Variant` is one change, so tests (and the
//! JSON control API, as `{"name": "...", "value": ...}`) flip exactly what they care about.

use serde::{Deserialize, Serialize};

use crate::provider::Provider;

/// How Dialpad reports `expires_in`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiresInMode {
    /// A lifetime in seconds, as the OpenAPI spec says.
    #[default]
    Seconds,
    /// An absolute unix time (`now + lifetime`), like the guide's sample response.
    Epoch,
}

/// Which token-request body encodings Dialpad accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyEncoding {
    #[default]
    Both,
    FormOnly,
    JsonOnly,
}

/// Where Dialpad accepts client credentials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    #[default]
    Either,
    BasicOnly,
    BodyOnly,
}

/// How Dialpad serialises user and company ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdFormat {
    /// `"5835806903417907"`, as in the examples.
    #[default]
    String,
    /// `5835806903417907`, as the schema's int64 type says.
    Integer,
}

/// The `api_url` Zoom puts in token responses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoomApiUrl {
    /// The `zoom_api` host.
    #[default]
    Primary,
    /// The `zoom_api_alt` host.
    Alternate,
    /// Any string, e.g. a hostile URL.
    Custom(String),
}

/// What the generic server puts in the `iss` authorization-response parameter (RFC 9207).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssResponse {
    /// The correct issuer, exactly when the metadata advertises support.
    #[default]
    FollowMetadata,
    /// A wrong issuer on every response (mix-up attack).
    Wrong,
    /// No `iss`, even when the metadata advertises support.
    Omit,
}

/// A fixed-window request limit on the fake clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub max_requests: u32,
    pub window_seconds: u64,
}

/// One behaviour change. Serialised adjacently tagged: `{"name":"dialpad_expires_in","value":"epoch"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", content = "value", rename_all = "snake_case")]
pub enum Variant {
    DialpadExpiresIn(ExpiresInMode),
    /// Return exactly this `expires_in` (past epoch, absurd value); `None` restores the mode.
    DialpadExpiresInRaw(Option<i64>),
    DialpadTokenBody(BodyEncoding),
    DialpadClientAuth(ClientAuthMode),
    DialpadUserId(IdFormat),
    /// Limit on Dialpad API calls per host; `None` disables it.
    DialpadRateLimit(Option<RateLimit>),
    /// Accept client credentials in the body as well as Basic.
    ZoomBodyCredentials(bool),
    ZoomApiUrl(ZoomApiUrl),
    ZoomRefreshInactivitySeconds(u64),
    /// Accept form-encoded token requests (default: strict JSON).
    AircallAcceptForm(bool),
    /// Accept Basic client auth at the token endpoint (default: body credentials only).
    AircallAcceptBasic(bool),
    /// `integrations/disable` also revokes the access token.
    AircallDisableRevokesToken(bool),
    /// `None` = the metadata omits `code_challenge_methods_supported`: no PKCE support.
    GenericCodeChallengeMethods(Option<Vec<String>>),
    GenericTokenEndpointAuthMethods(Vec<String>),
    GenericIssParameterSupported(bool),
    GenericIssResponse(IssResponse),
    /// Metadata reports an issuer different from the one its URL was built from.
    GenericWrongIssuerInMetadata(bool),
    GenericRefreshRotation(bool),
    /// Reusing a rotated-out refresh token revokes the whole grant (RFC 9700 §4.14.2).
    GenericRefreshReuseRevokesGrant(bool),
    /// Reject authorization requests without `code_challenge`.
    GenericRequirePkce(bool),
    /// Seconds a rotated-out refresh token keeps working.
    RefreshGraceSeconds {
        provider: Provider,
        seconds: u64,
    },
    /// `None` = permanent access tokens.
    AccessTokenLifetime {
        provider: Provider,
        seconds: Option<u64>,
    },
    CodeLifetime {
        provider: Provider,
        seconds: u64,
    },
}

/// The current value of every switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Variants {
    pub dialpad_expires_in: ExpiresInMode,
    pub dialpad_expires_in_raw: Option<i64>,
    pub dialpad_token_body: BodyEncoding,
    pub dialpad_client_auth: ClientAuthMode,
    pub dialpad_user_id: IdFormat,
    pub dialpad_rate_limit: Option<RateLimit>,
    pub zoom_body_credentials: bool,
    pub zoom_api_url: ZoomApiUrl,
    pub zoom_refresh_inactivity_seconds: u64,
    pub aircall_accept_form: bool,
    pub aircall_accept_basic: bool,
    pub aircall_disable_revokes_token: bool,
    pub generic_code_challenge_methods: Option<Vec<String>>,
    pub generic_token_endpoint_auth_methods: Vec<String>,
    pub generic_iss_parameter_supported: bool,
    pub generic_iss_response: IssResponse,
    pub generic_wrong_issuer_in_metadata: bool,
    pub generic_refresh_rotation: bool,
    pub generic_refresh_reuse_revokes_grant: bool,
    pub generic_require_pkce: bool,
    pub per_provider: Vec<ProviderLifetimes>,
}

/// Lifetimes that exist for every provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProviderLifetimes {
    pub provider: Provider,
    pub code_seconds: u64,
    pub access_token_seconds: Option<u64>,
    pub refresh_grace_seconds: u64,
}

impl ProviderLifetimes {
    fn default_for(provider: Provider) -> Self {
        let (code_seconds, access_token_seconds) = match provider {
            // Dialpad: code 1 minute [doc]; access token lifetime undocumented [GUESS: 1 h].
            Provider::DialpadProduction | Provider::DialpadSandbox => (60, Some(3600)),
            Provider::Zoom => (300, Some(3599)),
            // Aircall tokens are permanent.
            Provider::Aircall => (600, None),
            Provider::Generic => (600, Some(3600)),
        };
        ProviderLifetimes { provider, code_seconds, access_token_seconds, refresh_grace_seconds: 0 }
    }
}

impl Default for Variants {
    fn default() -> Self {
        Variants {
            dialpad_expires_in: ExpiresInMode::Seconds,
            dialpad_expires_in_raw: None,
            dialpad_token_body: BodyEncoding::Both,
            dialpad_client_auth: ClientAuthMode::Either,
            dialpad_user_id: IdFormat::String,
            dialpad_rate_limit: None,
            zoom_body_credentials: false,
            zoom_api_url: ZoomApiUrl::Primary,
            zoom_refresh_inactivity_seconds: 90 * 24 * 3600,
            aircall_accept_form: false,
            aircall_accept_basic: false,
            aircall_disable_revokes_token: false,
            generic_code_challenge_methods: Some(vec!["S256".to_owned(), "plain".to_owned()]),
            generic_token_endpoint_auth_methods: vec![
                "client_secret_basic".to_owned(),
                "client_secret_post".to_owned(),
            ],
            generic_iss_parameter_supported: true,
            generic_iss_response: IssResponse::FollowMetadata,
            generic_wrong_issuer_in_metadata: false,
            generic_refresh_rotation: true,
            generic_refresh_reuse_revokes_grant: true,
            generic_require_pkce: false,
            per_provider: Provider::ALL.into_iter().map(ProviderLifetimes::default_for).collect(),
        }
    }
}

impl Variants {
    pub fn lifetimes(&self, provider: Provider) -> ProviderLifetimes {
        self.per_provider
            .iter()
            .find(|l| l.provider == provider)
            .cloned()
            .unwrap_or_else(|| ProviderLifetimes::default_for(provider))
    }

    /// Seconds a refresh token survives without being exchanged (only Zoom documents one).
    pub fn refresh_inactivity(&self, provider: Provider) -> Option<u64> {
        (provider == Provider::Zoom).then_some(self.zoom_refresh_inactivity_seconds)
    }

    fn lifetimes_mut(&mut self, provider: Provider) -> &mut ProviderLifetimes {
        if let Some(index) = self.per_provider.iter().position(|l| l.provider == provider) {
            &mut self.per_provider[index]
        } else {
            self.per_provider.push(ProviderLifetimes::default_for(provider));
            let last = self.per_provider.len() - 1;
            &mut self.per_provider[last]
        }
    }

    pub fn apply(&mut self, variant: Variant) {
        match variant {
            Variant::DialpadExpiresIn(v) => self.dialpad_expires_in = v,
            Variant::DialpadExpiresInRaw(v) => self.dialpad_expires_in_raw = v,
            Variant::DialpadTokenBody(v) => self.dialpad_token_body = v,
            Variant::DialpadClientAuth(v) => self.dialpad_client_auth = v,
            Variant::DialpadUserId(v) => self.dialpad_user_id = v,
            Variant::DialpadRateLimit(v) => self.dialpad_rate_limit = v,
            Variant::ZoomBodyCredentials(v) => self.zoom_body_credentials = v,
            Variant::ZoomApiUrl(v) => self.zoom_api_url = v,
            Variant::ZoomRefreshInactivitySeconds(v) => self.zoom_refresh_inactivity_seconds = v,
            Variant::AircallAcceptForm(v) => self.aircall_accept_form = v,
            Variant::AircallAcceptBasic(v) => self.aircall_accept_basic = v,
            Variant::AircallDisableRevokesToken(v) => self.aircall_disable_revokes_token = v,
            Variant::GenericCodeChallengeMethods(v) => self.generic_code_challenge_methods = v,
            Variant::GenericTokenEndpointAuthMethods(v) => self.generic_token_endpoint_auth_methods = v,
            Variant::GenericIssParameterSupported(v) => self.generic_iss_parameter_supported = v,
            Variant::GenericIssResponse(v) => self.generic_iss_response = v,
            Variant::GenericWrongIssuerInMetadata(v) => self.generic_wrong_issuer_in_metadata = v,
            Variant::GenericRefreshRotation(v) => self.generic_refresh_rotation = v,
            Variant::GenericRefreshReuseRevokesGrant(v) => self.generic_refresh_reuse_revokes_grant = v,
            Variant::GenericRequirePkce(v) => self.generic_require_pkce = v,
            Variant::RefreshGraceSeconds { provider, seconds } => {
                self.lifetimes_mut(provider).refresh_grace_seconds = seconds
            }
            Variant::AccessTokenLifetime { provider, seconds } => {
                self.lifetimes_mut(provider).access_token_seconds = seconds
            }
            Variant::CodeLifetime { provider, seconds } => self.lifetimes_mut(provider).code_seconds = seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_json_shape() {
        let v: Variant = serde_json::from_str(r#"{"name":"dialpad_expires_in","value":"epoch"}"#).unwrap();
        assert_eq!(v, Variant::DialpadExpiresIn(ExpiresInMode::Epoch));
        let v: Variant =
            serde_json::from_str(r#"{"name":"access_token_lifetime","value":{"provider":"zoom","seconds":60}}"#)
                .unwrap();
        assert_eq!(v, Variant::AccessTokenLifetime { provider: Provider::Zoom, seconds: Some(60) });
        let v: Variant = serde_json::from_str(r#"{"name":"zoom_api_url","value":{"custom":"http://x"}}"#).unwrap();
        assert_eq!(v, Variant::ZoomApiUrl(ZoomApiUrl::Custom("http://x".into())));
        let v: Variant = serde_json::from_str(r#"{"name":"generic_code_challenge_methods","value":null}"#).unwrap();
        assert_eq!(v, Variant::GenericCodeChallengeMethods(None));
    }
}
