//! A provider as one provider configuration uses it: definition + environment (or the custom
//! endpoints of a generic provider).

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::catalog::check_transport;
use crate::definition::{ClientAuth, Endpoints, PkceSupport, ProviderDefinition, ScopeStyle};
use crate::{Pkce, ProviderError};

/// An app's client registration at a provider. `Debug` hides the secret.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

/// Endpoints of a generic (custom) provider, from discovery or typed in by the operator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CustomEndpoints {
    #[serde(default)]
    pub issuer: Option<String>,
    pub authorize_url: Url,
    pub token_url: Url,
    #[serde(default)]
    pub revoke_url: Option<Url>,
    #[serde(default)]
    pub userinfo_url: Option<Url>,
    #[serde(default)]
    pub api_base_url: Option<Url>,
    #[serde(default = "basic")]
    pub client_auth: ClientAuth,
    #[serde(default = "s256")]
    pub pkce: PkceSupport,
    /// The provider adds `iss` to authorization responses (RFC 9207): require and check it.
    #[serde(default)]
    pub iss_parameter_supported: bool,
}

fn basic() -> ClientAuth {
    ClientAuth::Basic
}

fn s256() -> PkceSupport {
    PkceSupport::S256
}

#[derive(Debug, Clone)]
pub struct ResolvedProvider {
    pub definition: Arc<ProviderDefinition>,
    pub environment: String,
    pub endpoints: Endpoints,
    pub client_auth: ClientAuth,
    pub pkce: PkceSupport,
    /// Expected `iss` on authorization responses, when the provider sends one.
    pub expected_issuer: Option<String>,
}

impl ResolvedProvider {
    pub fn new(
        definition: Arc<ProviderDefinition>,
        environment: Option<&str>,
        custom: Option<&CustomEndpoints>,
    ) -> Result<ResolvedProvider, ProviderError> {
        if definition.configured_endpoints {
            let custom =
                custom.ok_or_else(|| ProviderError::Config(format!("provider `{}` needs endpoints", definition.id)))?;
            for url in [
                Some(&custom.authorize_url),
                Some(&custom.token_url),
                custom.revoke_url.as_ref(),
                custom.userinfo_url.as_ref(),
                custom.api_base_url.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                check_transport(url).map_err(ProviderError::Config)?;
            }
            let endpoints = Endpoints {
                authorize_url: custom.authorize_url.clone(),
                token_url: custom.token_url.clone(),
                revoke_url: custom.revoke_url.clone(),
                identity_url: custom.userinfo_url.clone(),
                api_base_url: custom.api_base_url.clone(),
                api_base_url_field: None,
                allowed_api_host_suffixes: Vec::new(),
                webhooks_url: None,
            };
            return Ok(ResolvedProvider {
                environment: definition.default_environment.clone(),
                endpoints,
                client_auth: custom.client_auth,
                pkce: custom.pkce,
                expected_issuer: custom.iss_parameter_supported.then(|| custom.issuer.clone()).flatten(),
                definition,
            });
        }
        let environment = environment.unwrap_or(&definition.default_environment).to_owned();
        let endpoints = definition.environments.get(&environment).cloned().ok_or_else(|| {
            let known: Vec<&str> = definition.environments.keys().map(String::as_str).collect();
            ProviderError::Config(format!(
                "provider `{}` has no environment `{environment}` (known: {})",
                definition.id,
                known.join(", ")
            ))
        })?;
        let client_auth = definition.token.client_auth_used().ok_or_else(|| {
            ProviderError::Config(format!(
                "provider `{}` accepts either client authentication but prefers none",
                definition.id
            ))
        })?;
        Ok(ResolvedProvider {
            client_auth,
            pkce: definition.authorize.pkce,
            expected_issuer: None,
            environment,
            endpoints,
            definition,
        })
    }

    /// The URL the user's browser is sent to. Scopes follow the provider's style; PKCE, where
    /// supported, always names `S256` explicitly (Zoom would otherwise assume `plain`).
    pub fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        state: &str,
        scopes: &[String],
        pkce: Option<&Pkce>,
    ) -> Url {
        let mut url = self.endpoints.authorize_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("response_type", "code");
            query.append_pair("client_id", client_id);
            query.append_pair("redirect_uri", redirect_uri);
            query.append_pair("state", state);
            match self.definition.authorize.scope_style {
                ScopeStyle::SpaceSeparated if !scopes.is_empty() => {
                    query.append_pair("scope", &scopes.join(" "));
                }
                ScopeStyle::Fixed => {
                    query.append_pair("scope", self.definition.authorize.fixed_scope.as_deref().unwrap_or_default());
                }
                _ => {}
            }
            if let Some(pkce) = pkce {
                query.append_pair("code_challenge", &pkce.challenge);
                query.append_pair("code_challenge_method", "S256");
            }
        }
        url
    }

    pub fn uses_pkce(&self) -> bool {
        self.pkce == PkceSupport::S256
    }

    /// The default API base of this provider and environment.
    pub fn default_api_base(&self) -> Option<String> {
        self.endpoints.api_base_url.as_ref().map(|u| u.as_str().trim_end_matches('/').to_owned())
    }

    /// Accepts an API base named by a token response only if it stays on the provider's hosts
    /// (the default API origin, or an allowed host suffix; an entry with a port must match the
    /// port too), so a response can never redirect credentials elsewhere.
    pub fn check_api_base(&self, candidate: &str) -> Result<String, ProviderError> {
        let url = Url::parse(candidate)
            .map_err(|_| ProviderError::Protocol("api base URL in the token response is not a URL".into()))?;
        check_transport(&url).map_err(ProviderError::Protocol)?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let same_origin = self.endpoints.api_base_url.as_ref().is_some_and(|u| u.origin() == url.origin());
        let allowed = same_origin
            || self.endpoints.allowed_api_host_suffixes.iter().any(|entry| {
                let entry = entry.to_ascii_lowercase();
                if entry.contains(':') {
                    authority == entry
                } else {
                    url.port().is_none() && (host == entry || host.ends_with(&format!(".{entry}")))
                }
            });
        if !allowed || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(ProviderError::Protocol(format!(
                "api base host `{authority}` is not one of the provider's hosts"
            )));
        }
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }

    pub(crate) fn basic_or_body(
        &self,
        credentials: &ClientCredentials,
    ) -> (Option<SecretString>, Vec<(&'static str, String)>) {
        match self.client_auth {
            ClientAuth::Basic => {
                (Some(crate::client_auth::basic_header(&credentials.client_id, &credentials.client_secret)), Vec::new())
            }
            ClientAuth::Body => (
                None,
                vec![
                    ("client_id", credentials.client_id.clone()),
                    ("client_secret", credentials.client_secret.expose_secret().to_owned()),
                ],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;

    fn resolved(id: &str, env: Option<&str>) -> ResolvedProvider {
        ResolvedProvider::new(Catalog::built_in().get(id).unwrap(), env, None).unwrap()
    }

    fn params(url: &Url) -> Vec<(String, String)> {
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    /// Quirk 9: Zoom's authorize URL carries no `scope`; quirk 15: S256 is named explicitly.
    #[test]
    fn zoom_authorize_url_has_no_scope_and_explicit_s256() {
        let pkce = Pkce::generate();
        let url =
            resolved("zoom", None).authorize_url("cid", "https://v/cb", "st", &["meeting:read".into()], Some(&pkce));
        let p = params(&url);
        assert!(!p.iter().any(|(k, _)| k == "scope"), "{url}");
        assert!(p.contains(&("code_challenge_method".into(), "S256".into())));
        assert!(p.contains(&("code_challenge".into(), pkce.challenge.clone())));
    }

    #[test]
    fn aircall_sends_the_fixed_scope_and_no_pkce() {
        let provider = resolved("aircall", None);
        assert!(!provider.uses_pkce());
        let url = provider.authorize_url("cid", "https://v/cb", "st", &[], None);
        assert!(params(&url).contains(&("scope".into(), "public_api".into())));
        assert!(url.as_str().starts_with("https://dashboard.aircall.io/oauth/authorize?"));
    }

    #[test]
    fn dialpad_sandbox_uses_the_sandbox_host() {
        let url = resolved("dialpad", Some("sandbox")).authorize_url(
            "c",
            "https://v/cb?tenant=x",
            "s",
            &["calls:list".into(), "offline_access".into()],
            None,
        );
        assert_eq!(url.host_str(), Some("sandbox.dialpad.com"));
        let p = params(&url);
        assert!(p.contains(&("scope".into(), "calls:list offline_access".into())));
        assert!(p.contains(&("redirect_uri".into(), "https://v/cb?tenant=x".into())));
        assert!(ResolvedProvider::new(Catalog::built_in().get("dialpad").unwrap(), Some("staging"), None).is_err());
    }

    /// Quirk 14 guard: an `api_url` off Zoom's domain is refused.
    #[test]
    fn api_base_from_a_response_must_stay_on_provider_hosts() {
        let zoom = resolved("zoom", None);
        assert_eq!(
            zoom.check_api_base("https://eu01api-www4local.zoom.us/").unwrap(),
            "https://eu01api-www4local.zoom.us"
        );
        assert!(zoom.check_api_base("https://zoom.us.evil.test").is_err());
        assert!(zoom.check_api_base("https://evilzoom.us").is_err());
        assert!(zoom.check_api_base("http://api.zoom.us").is_err());
        assert!(zoom.check_api_base("https://user@api.zoom.us").is_err());
        assert!(zoom.check_api_base("https://api.zoom.us:8443").is_err());
    }
}
