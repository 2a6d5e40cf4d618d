//! The "who am I" call: which provider account a token belongs to.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;

use crate::ProviderError;
use crate::definition::PointerList;
use crate::http_client::{ProviderHttp, classify_transport, retry_after};
use crate::resolved::ResolvedProvider;

/// The account behind a grant. Ids are strings whatever JSON type the provider used (Dialpad
/// documents int64 but sends strings; Aircall sends integers), so equality always holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub account_id: String,
    pub user_id: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
}

impl Identity {
    /// The key that makes a grant unique per provider account (Zoom: account and user).
    pub fn key(&self) -> String {
        match &self.user_id {
            Some(user) if *user != self.account_id => format!("{}/{}", self.account_id, user),
            _ => self.account_id.clone(),
        }
    }
}

fn as_id_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lookup(body: &Value, pointers: Option<&PointerList>) -> Option<String> {
    pointers?.pointers().into_iter().find_map(|p| body.pointer(p).and_then(as_id_string))
}

impl ProviderHttp {
    /// Calls the provider's identity endpoint with the access token. A provider without one
    /// (a generic provider with no userinfo endpoint) yields the account `unknown`.
    pub async fn fetch_identity(
        &self,
        provider: &ResolvedProvider,
        access_token: &SecretString,
        api_base_override: Option<&str>,
    ) -> Result<Identity, ProviderError> {
        let Some(mut url) = provider.endpoints.identity_url.clone() else {
            return Ok(Identity { account_id: "unknown".into(), user_id: None, display_name: None, email: None });
        };
        // Zoom: the identity lives on the grant's own API host.
        if let (Some(base), Some(default)) = (api_base_override, provider.default_api_base())
            && let Some(rest) = url.as_str().strip_prefix(&default)
        {
            url = url::Url::parse(&format!("{base}{rest}")).map_err(|e| ProviderError::Protocol(e.to_string()))?;
        }
        let request =
            self.client.get(url).bearer_auth(access_token.expose_secret()).header("accept", "application/json");
        let response = self.send(request).await?;
        let status = response.status();
        let at = crate::error::call_site(response.url());
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ProviderError::Unauthorized { at, status: status.as_u16() });
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(ProviderError::Transient {
                reason: format!("HTTP {} from {at}", status.as_u16()),
                retry_after: retry_after(&response),
            });
        }
        if !status.is_success() {
            return Err(ProviderError::Rejected {
                at,
                status: status.as_u16(),
                error: "identity_call_failed".into(),
                description: "the who-am-I call failed".into(),
            });
        }
        let body: Value = serde_json::from_slice(&response.bytes().await.map_err(classify_transport)?)
            .map_err(|_| ProviderError::Protocol("identity response is not JSON".into()))?;
        let rules = &provider.definition.identity;
        let account_id = lookup(&body, Some(&rules.account_id))
            .ok_or_else(|| ProviderError::Protocol("identity response has no account id".into()))?;
        Ok(Identity {
            account_id,
            user_id: lookup(&body, rules.user_id.as_ref()),
            display_name: lookup(&body, rules.display_name.as_ref()),
            email: lookup(&body, rules.email.as_ref()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Quirk 31: ids are strings whether they arrive as strings or integers.
    #[test]
    fn ids_are_strings_whatever_their_json_type() {
        let pointers = PointerList::One("/id".into());
        assert_eq!(lookup(&json!({"id": "5835806903417907"}), Some(&pointers)).as_deref(), Some("5835806903417907"));
        assert_eq!(lookup(&json!({"id": 5835806903417907_i64}), Some(&pointers)).as_deref(), Some("5835806903417907"));
        assert_eq!(lookup(&json!({"id": null}), Some(&pointers)), None);
        let fallbacks = PointerList::Many(vec!["/a/company_id".into(), "/a/user/id".into()]);
        assert_eq!(lookup(&json!({"a": {"user": {"id": 7}}}), Some(&fallbacks)).as_deref(), Some("7"));
    }

    #[test]
    fn identity_key_combines_account_and_user() {
        let id = Identity { account_id: "acct".into(), user_id: Some("u1".into()), display_name: None, email: None };
        assert_eq!(id.key(), "acct/u1");
        let id = Identity { account_id: "42".into(), user_id: Some("42".into()), display_name: None, email: None };
        assert_eq!(id.key(), "42");
    }
}
