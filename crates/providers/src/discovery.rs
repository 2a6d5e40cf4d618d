//! Authorization server metadata discovery (RFC 8414, OpenID Connect Discovery), issuer checked.

use serde_json::Value;
use url::Url;

use crate::ProviderError;
use crate::catalog::check_transport;
use crate::definition::{ClientAuth, PkceSupport};
use crate::http_client::ProviderHttp;
use crate::resolved::CustomEndpoints;

/// What discovery found, ready to store as a provider configuration's endpoints.
#[derive(Debug, Clone)]
pub struct DiscoveredProvider {
    pub endpoints: CustomEndpoints,
    pub scopes_supported: Vec<String>,
    /// The client authentication styles the metadata allows (`endpoints.client_auth` is the
    /// preferred one: Basic when listed).
    pub client_auth_supported: Vec<ClientAuth>,
}

impl DiscoveredProvider {
    /// Uses `chosen` client authentication instead of the preferred one, if the metadata allows
    /// it (a client registered for `client_secret_post` at a server that lists both).
    pub fn with_client_auth(mut self, chosen: ClientAuth) -> Result<Self, ProviderError> {
        if !self.client_auth_supported.contains(&chosen) {
            let method = |a: &ClientAuth| match a {
                ClientAuth::Basic => "client_secret_basic",
                ClientAuth::Body => "client_secret_post",
            };
            let listed: Vec<&str> = self.client_auth_supported.iter().map(method).collect();
            return Err(ProviderError::Config(format!(
                "the provider's metadata does not allow `{}` (token_endpoint_auth_methods_supported: {})",
                method(&chosen),
                listed.join(", ")
            )));
        }
        self.endpoints.client_auth = chosen;
        Ok(self)
    }
}

/// Fetches metadata for `issuer`: first RFC 8414 (`/.well-known/oauth-authorization-server`
/// inserted between host and path), then OpenID (`/.well-known/openid-configuration` appended).
/// Metadata whose `issuer` is not identical to `issuer` is refused (RFC 8414 §3.3).
pub async fn discover(http: &ProviderHttp, issuer: &str) -> Result<DiscoveredProvider, ProviderError> {
    let issuer_url = Url::parse(issuer).map_err(|_| ProviderError::Config("issuer is not a URL".into()))?;
    check_transport(&issuer_url).map_err(ProviderError::Config)?;
    if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
        return Err(ProviderError::Config("issuer must not have a query or fragment".into()));
    }
    let path = issuer_url.path().trim_end_matches('/');
    let origin = issuer_url.origin().ascii_serialization();
    let candidates = [
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
    ];
    let mut last_error = None;
    for candidate in candidates {
        match fetch(http, &candidate).await {
            Ok(metadata) => return from_metadata(issuer, &metadata),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| ProviderError::Config("no metadata found".into())))
}

async fn fetch(http: &ProviderHttp, url: &str) -> Result<Value, ProviderError> {
    let response = http.send(http.client.get(url).header("accept", "application/json")).await?;
    if !response.status().is_success() {
        return Err(ProviderError::Config(format!(
            "metadata request to {url} answered HTTP {}",
            response.status().as_u16()
        )));
    }
    ProviderHttp::json_body(response).await
}

fn from_metadata(issuer: &str, metadata: &Value) -> Result<DiscoveredProvider, ProviderError> {
    let text = |key: &str| metadata.get(key).and_then(Value::as_str);
    let list = |key: &str| -> Option<Vec<String>> {
        metadata
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
    };
    let published = text("issuer").unwrap_or_default();
    if published != issuer {
        return Err(ProviderError::Config(format!(
            "metadata names issuer `{published}`, not the configured `{issuer}`: refusing it"
        )));
    }
    let url = |key: &str| -> Result<Option<Url>, ProviderError> {
        match text(key) {
            None => Ok(None),
            Some(u) => {
                let parsed = Url::parse(u).map_err(|_| ProviderError::Config(format!("`{key}` is not a URL")))?;
                check_transport(&parsed).map_err(ProviderError::Config)?;
                Ok(Some(parsed))
            }
        }
    };
    let required = |key: &str| -> Result<Url, ProviderError> {
        url(key)?.ok_or_else(|| ProviderError::Config(format!("metadata has no `{key}`")))
    };
    // RFC 8414 §2: absent means client_secret_basic; prefer Basic whenever it is listed.
    let auth_methods =
        list("token_endpoint_auth_methods_supported").unwrap_or_else(|| vec!["client_secret_basic".into()]);
    let client_auth_supported: Vec<ClientAuth> =
        [("client_secret_basic", ClientAuth::Basic), ("client_secret_post", ClientAuth::Body)]
            .into_iter()
            .filter(|(method, _)| auth_methods.iter().any(|m| m == method))
            .map(|(_, auth)| auth)
            .collect();
    let Some(&client_auth) = client_auth_supported.first() else {
        return Err(ProviderError::Config(
            "the provider supports neither client_secret_basic nor client_secret_post".into(),
        ));
    };
    // Absent `code_challenge_methods_supported` means no PKCE support.
    let pkce = match list("code_challenge_methods_supported") {
        Some(methods) if methods.iter().any(|m| m == "S256") => PkceSupport::S256,
        _ => PkceSupport::None,
    };
    Ok(DiscoveredProvider {
        endpoints: CustomEndpoints {
            issuer: Some(issuer.to_owned()),
            authorize_url: required("authorization_endpoint")?,
            token_url: required("token_endpoint")?,
            revoke_url: url("revocation_endpoint")?,
            userinfo_url: url("userinfo_endpoint")?,
            api_base_url: None,
            client_auth,
            pkce,
            iss_parameter_supported: metadata
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        scopes_supported: list("scopes_supported").unwrap_or_default(),
        client_auth_supported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metadata(extra: Value) -> Value {
        let mut m = json!({
            "issuer": "https://id.example/realms/x",
            "authorization_endpoint": "https://id.example/auth",
            "token_endpoint": "https://id.example/token",
        });
        m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        m
    }

    /// Quirk 28: an issuer mismatch is refused.
    #[test]
    fn issuer_mismatch_is_refused() {
        let err = from_metadata("https://id.example/realms/y", &metadata(json!({}))).unwrap_err();
        assert!(err.to_string().contains("refusing"), "{err}");
    }

    /// Quirk 28: no `code_challenge_methods_supported` means no PKCE; S256 listed means PKCE.
    #[test]
    fn pkce_only_when_s256_is_listed() {
        let found = from_metadata("https://id.example/realms/x", &metadata(json!({}))).unwrap();
        assert_eq!(found.endpoints.pkce, PkceSupport::None);
        let found = from_metadata(
            "https://id.example/realms/x",
            &metadata(json!({"code_challenge_methods_supported": ["plain", "S256"]})),
        )
        .unwrap();
        assert_eq!(found.endpoints.pkce, PkceSupport::S256);
    }

    /// Quirk 28: `client_secret_post` only when Basic is not listed.
    #[test]
    fn basic_is_preferred_over_post() {
        let both = json!({"token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"]});
        assert_eq!(
            from_metadata("https://id.example/realms/x", &metadata(both)).unwrap().endpoints.client_auth,
            ClientAuth::Basic
        );
        let post = json!({"token_endpoint_auth_methods_supported": ["client_secret_post"]});
        assert_eq!(
            from_metadata("https://id.example/realms/x", &metadata(post)).unwrap().endpoints.client_auth,
            ClientAuth::Body
        );
        assert_eq!(
            from_metadata("https://id.example/realms/x", &metadata(json!({}))).unwrap().endpoints.client_auth,
            ClientAuth::Basic
        );
    }

    /// A client registered for `client_secret_post` keeps discovery and its issuer check.
    #[test]
    fn an_explicit_client_auth_is_used_when_the_metadata_allows_it() {
        let both = json!({"token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"]});
        let found = from_metadata("https://id.example/realms/x", &metadata(both)).unwrap();
        assert_eq!(found.with_client_auth(ClientAuth::Body).unwrap().endpoints.client_auth, ClientAuth::Body);
        let basic_only = json!({"token_endpoint_auth_methods_supported": ["client_secret_basic"]});
        let found = from_metadata("https://id.example/realms/x", &metadata(basic_only)).unwrap();
        let refused = found.with_client_auth(ClientAuth::Body).unwrap_err().to_string();
        assert!(refused.contains("client_secret_post") && refused.contains("client_secret_basic"), "{refused}");
    }
}
