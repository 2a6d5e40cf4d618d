//! Managed secrets: credentials the app owns (an API key, a service token, a username and
//! password), stored sealed and write-only, injected by the proxy in the style the target API
//! needs, and only ever sent to the base URLs given. Addressed by a grant id like OAuth grants.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokenvault_crypto::SealContext;
use tokenvault_store::ManagedSecretRecord;

use crate::access::request::PolicyScope;
use crate::admin::apps::validate_name;
use crate::usage::proxy::target::{Credential, ProxyTarget};
use crate::{CallContext, IdKind, ServiceError, Timestamp, Vault};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedSecretInput {
    pub name: String,
    #[serde(default)]
    pub end_user_id: Option<String>,
    /// `bearer`, `header` (with `header_name`), `basic` (with `username`) or `query` (with
    /// `query_parameter`, only for APIs that require it).
    pub style: String,
    #[serde(default)]
    pub header_name: Option<String>,
    #[serde(default)]
    pub query_parameter: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// The secret (token, API key or password). Write-only.
    pub secret: SecretString,
    /// The only base URLs it may be sent to (https; http only for localhost; never a loopback,
    /// private or link-local address unless the operator allows it). The proxy uses the first
    /// unless the call names another with the `x-tokenvault-base-url` header.
    pub base_urls: Vec<String>,
}

impl std::fmt::Debug for ManagedSecretInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedSecretInput")
            .field("name", &self.name)
            .field("style", &self.style)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize)]
pub struct ManagedSecretView {
    pub id: String,
    pub name: String,
    pub end_user_id: Option<String>,
    pub style: String,
    pub header_name: Option<String>,
    pub query_parameter: Option<String>,
    pub username: Option<String>,
    pub base_urls: Vec<String>,
    pub status: String,
    pub secret_set: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

fn view(r: ManagedSecretRecord) -> ManagedSecretView {
    ManagedSecretView {
        header_name: (r.style == "header").then(|| r.parameter.clone()).flatten(),
        query_parameter: (r.style == "query").then(|| r.parameter.clone()).flatten(),
        secret_set: r.secret.is_some(),
        id: r.id,
        name: r.name,
        end_user_id: r.end_user_id,
        style: r.style,
        username: r.username,
        base_urls: r.base_urls,
        status: r.status,
        created_at: Timestamp::from_millis(r.created_at),
        updated_at: Timestamp::from_millis(r.updated_at),
    }
}

const FORBIDDEN_HEADERS: &[&str] = &["host", "cookie", "content-length", "transfer-encoding", "connection"];

/// Query parameters that carry OAuth bearer tokens (RFC 6750 §2.3): a bearer token belongs in the
/// `Authorization` header, so such a secret must use the `bearer` style.
const BEARER_QUERY_PARAMETERS: &[&str] = &["access_token", "bearer", "bearer_token"];

/// Refuses a secret value the proxy could not send as it is. No style may carry a control
/// character (CR and LF would split or end a header, NUL is invalid everywhere; a trailing newline
/// copied from a file is the usual cause). `bearer` and `header` values go into a header
/// verbatim, so they must also be printable ASCII without a space at either end (a recipient
/// strips such spaces, and non-ASCII bytes are read differently by different servers). `basic`
/// and `query` values are encoded (base64, percent-encoding), so any other character is fine.
/// The message never shows the value.
fn check_secret_value(style: &str, secret: &str) -> Result<(), ServiceError> {
    let refuse = |why: &str| ServiceError::invalid("invalid_secret_value", format!("`secret` {why}"));
    if secret.chars().any(char::is_control) {
        return Err(refuse(
            "must not contain control characters (CR, LF, NUL, tab, ...): an HTTP request cannot carry them; \
             a trailing newline copied from a file is the usual cause",
        ));
    }
    if matches!(style, "bearer" | "header") {
        if !secret.is_ascii() {
            return Err(refuse("must be ASCII for the `bearer` and `header` styles: it is sent in a header verbatim"));
        }
        if secret.starts_with(' ') || secret.ends_with(' ') {
            return Err(refuse(
                "must not start or end with a space for the `bearer` and `header` styles: recipients strip such spaces from header values",
            ));
        }
    }
    Ok(())
}

/// The Basic username (RFC 7617): not empty, no control character, no `:` (it separates the
/// username from the password), at most 256 characters.
fn check_username(username: &str) -> Result<(), ServiceError> {
    let invalid = |m: &str| ServiceError::invalid("invalid_managed_secret", m);
    if username.is_empty() {
        return Err(invalid("`basic` style needs `username`"));
    }
    if username.chars().count() > 256 || username.chars().any(char::is_control) || username.contains(':') {
        return Err(invalid(
            "`username` must be 1-256 characters, without `:` or control characters (CR, LF, NUL, ...)",
        ));
    }
    Ok(())
}

impl Vault {
    async fn managed_record(
        &self,
        app_id: &str,
        id: &str,
        input: ManagedSecretInput,
        created_at: i64,
    ) -> Result<ManagedSecretRecord, ServiceError> {
        let name = validate_name("name", &input.name)?;
        let invalid = |m: &str| ServiceError::invalid("invalid_managed_secret", m);
        // Each style takes only its own fields: a stray one means the caller meant another style.
        let stray = match input.style.as_str() {
            "bearer" => input.header_name.is_some() || input.query_parameter.is_some() || input.username.is_some(),
            "header" => input.query_parameter.is_some() || input.username.is_some(),
            "basic" => input.header_name.is_some() || input.query_parameter.is_some(),
            "query" => input.header_name.is_some() || input.username.is_some(),
            _ => false,
        };
        if stray {
            return Err(invalid(
                "each style takes only its own field: `header_name` (header), `username` (basic), `query_parameter` (query)",
            ));
        }
        let parameter = match input.style.as_str() {
            "bearer" | "basic" => None,
            "header" => {
                let name = input
                    .header_name
                    .ok_or_else(|| invalid("`header` style needs `header_name`"))?
                    .to_ascii_lowercase();
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() || FORBIDDEN_HEADERS.contains(&name.as_str())
                {
                    return Err(invalid("`header_name` is not a usable header name"));
                }
                Some(name)
            }
            "query" => {
                let name = input.query_parameter.ok_or_else(|| invalid("`query` style needs `query_parameter`"))?;
                if name.is_empty()
                    || name.len() > 64
                    || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(invalid("`query_parameter` must be 1-64 of a-z, 0-9, `_`, `-`"));
                }
                if BEARER_QUERY_PARAMETERS.contains(&name.to_ascii_lowercase().as_str()) {
                    return Err(invalid(
                        "a bearer token is never sent in the query string: use the `bearer` style instead of `query` with this parameter",
                    ));
                }
                Some(name)
            }
            _ => return Err(invalid("`style` is bearer, header, basic or query")),
        };
        if input.style == "basic" {
            check_username(input.username.as_deref().unwrap_or_default())?;
        }
        let secret = input.secret.expose_secret();
        if secret.is_empty() || secret.chars().count() > 8192 {
            return Err(invalid("`secret` must be 1-8192 characters"));
        }
        check_secret_value(&input.style, secret)?;
        if input.base_urls.is_empty() || input.base_urls.len() > 10 {
            return Err(invalid("give 1-10 `base_urls`"));
        }
        let mut base_urls = Vec::with_capacity(input.base_urls.len());
        for text in &input.base_urls {
            let url = self.parse_called_url("base_urls", text).await?;
            base_urls.push(url.as_str().trim_end_matches('/').to_owned());
        }
        let sealed = self.keys.seal(&SealContext::new("managed_secrets", id, "secret"), secret.as_bytes()).await?;
        Ok(ManagedSecretRecord {
            id: id.to_owned(),
            app_id: app_id.to_owned(),
            name,
            end_user_id: input
                .end_user_id
                .as_deref()
                .map(crate::connect::sessions::validate_end_user_id)
                .transpose()?,
            style: input.style,
            parameter,
            username: input.username,
            secret: Some(sealed),
            base_urls,
            status: "active".into(),
            created_at,
            updated_at: self.now().as_millis(),
        })
    }

    pub async fn create_managed_secret(
        &self,
        app_id: &str,
        input: ManagedSecretInput,
        context: &CallContext,
    ) -> Result<ManagedSecretView, ServiceError> {
        let id = IdKind::Grant.generate();
        let record = self.managed_record(app_id, &id, input, self.now().as_millis()).await?;
        self.store.upsert_managed_secret(&record).await?;
        self.audit(crate::audit::AuditEntry::config(app_id, "managed_secret.created", &id, context));
        Ok(view(record))
    }

    /// Replaces a managed secret (value included): it can be replaced, never read back.
    pub async fn replace_managed_secret(
        &self,
        app_id: &str,
        id: &str,
        input: ManagedSecretInput,
        context: &CallContext,
    ) -> Result<ManagedSecretView, ServiceError> {
        let id = IdKind::Grant.parse(id)?;
        let current =
            self.store.get_managed_secret(app_id, &id).await.map_err(ServiceError::from_store("managed secret"))?;
        let record = self.managed_record(app_id, &id, input, current.created_at).await?;
        self.store.upsert_managed_secret(&record).await?;
        self.audit(crate::audit::AuditEntry::config(app_id, "managed_secret.replaced", &id, context));
        Ok(view(record))
    }

    pub async fn list_managed_secrets(&self, app_id: &str) -> Result<Vec<ManagedSecretView>, ServiceError> {
        Ok(self.store.list_managed_secrets(app_id).await?.into_iter().map(view).collect())
    }

    pub async fn get_managed_secret(&self, app_id: &str, id: &str) -> Result<ManagedSecretView, ServiceError> {
        let id = IdKind::Grant.parse(id)?;
        Ok(view(self.store.get_managed_secret(app_id, &id).await.map_err(ServiceError::from_store("managed secret"))?))
    }

    pub async fn delete_managed_secret(
        &self,
        app_id: &str,
        id: &str,
        context: &CallContext,
    ) -> Result<(), ServiceError> {
        let id = IdKind::Grant.parse(id)?;
        self.store
            .delete_managed_secret(app_id, &id, self.now().as_millis())
            .await
            .map_err(ServiceError::from_store("managed secret"))?;
        self.audit(crate::audit::AuditEntry::config(app_id, "managed_secret.deleted", &id, context));
        Ok(())
    }

    pub(crate) async fn managed_secret_target(
        &self,
        record: &ManagedSecretRecord,
        requested_base: Option<&str>,
    ) -> Result<ProxyTarget, ServiceError> {
        let sealed = record.secret.as_ref().ok_or_else(|| ServiceError::Gone {
            code: "grant_revoked",
            message: "the managed secret was deleted".into(),
        })?;
        let plain = self.keys.open(&SealContext::new("managed_secrets", &record.id, "secret"), sealed).await?;
        let value = SecretString::from(
            String::from_utf8(plain.to_vec()).map_err(|_| ServiceError::Internal("secret not UTF-8".into()))?,
        );
        let base = crate::usage::base_urls::choose_base_url(&record.base_urls, requested_base)?;
        let credential = match record.style.as_str() {
            "bearer" => Credential::Bearer(value),
            "header" => Credential::Header {
                name: http::HeaderName::from_bytes(record.parameter.as_deref().unwrap_or_default().as_bytes())
                    .map_err(|_| ServiceError::Internal("bad header".into()))?,
                value,
            },
            "basic" => Credential::Basic { username: record.username.clone().unwrap_or_default(), password: value },
            _ => Credential::Query { parameter: record.parameter.clone().unwrap_or_default(), value },
        };
        Ok(ProxyTarget {
            grant_id: record.id.clone(),
            provider: "managed".into(),
            end_user_id: record.end_user_id.clone(),
            grant: None,
            refreshable_grant: None,
            base,
            credential,
            scope: PolicyScope {
                app_id: record.app_id.clone(),
                provider_config_id: None,
                grant_id: record.id.clone(),
                end_user_id: record.end_user_id.clone(),
                provider: "managed".into(),
                connected_at: record.created_at,
                delegation_id: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{check_secret_value, check_username};

    fn code(result: Result<(), crate::ServiceError>) -> Option<&'static str> {
        match result {
            Ok(()) => None,
            Err(crate::ServiceError::Invalid { code, .. }) => Some(code),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_a_request_cannot_carry_are_refused_for_every_style() {
        for style in ["bearer", "header", "basic", "query"] {
            for bad in ["abc\r\nX-Injected: 1", "abc\n", "\nabc", "a\0b", "a\tb", "a\u{7f}b", "a\u{85}b"] {
                assert_eq!(code(check_secret_value(style, bad)), Some("invalid_secret_value"), "{style} {bad:?}");
            }
            assert_eq!(code(check_secret_value(style, "sk_live_0123-ABC.~+/=")), None, "{style}");
        }
        for style in ["bearer", "header"] {
            for bad in [" abc", "abc ", "pässword"] {
                assert_eq!(code(check_secret_value(style, bad)), Some("invalid_secret_value"), "{style} {bad:?}");
            }
        }
        for style in ["basic", "query"] {
            assert_eq!(code(check_secret_value(style, " pässword with spaces ")), None, "{style}");
        }
    }

    #[test]
    fn basic_usernames_are_checked() {
        assert_eq!(code(check_username("svc-account@example.com")), None);
        for bad in ["", "a:b", "svc\r\n", "svc\0", &"u".repeat(257)] {
            assert_eq!(code(check_username(bad)), Some("invalid_managed_secret"), "{bad:?}");
        }
    }
}
