//! An app's provider configurations: client registration, environment and scopes per provider.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokenvault_crypto::SealContext;
use tokenvault_providers::{
    ClientCredentials, CustomEndpoints, InboundWebhooks, ProviderDefinition, ProviderError, ResolvedProvider, discover,
};
use tokenvault_store::ProviderConfigRecord;

use crate::{IdKind, ServiceError, Timestamp, Vault};

/// Input for creating or replacing a provider configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfigInput {
    /// Catalog id: `dialpad`, `zoom`, `aircall`, `custom`, or an operator-defined one.
    pub provider: String,
    /// A short name unique within the app (default: the provider id).
    #[serde(default)]
    pub key: Option<String>,
    /// Dialpad: `production` (default) or `sandbox`.
    #[serde(default)]
    pub environment: Option<String>,
    pub client_id: String,
    /// Write-only: never returned by any API.
    pub client_secret: SecretString,
    /// Scopes to request; default: the provider's default scopes.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Generic providers: the issuer to discover endpoints from (RFC 8414 / OpenID).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Generic providers: endpoints typed in instead of discovered.
    #[serde(default, deserialize_with = "crate::values::json_objects::opt_object")]
    pub endpoints: Option<CustomEndpoints>,
    /// Generic providers: the API base URL the credential may be sent to.
    #[serde(default)]
    pub api_base_url: Option<url::Url>,
    /// Generic providers: how the client authenticates at the token endpoint (`basic` or
    /// `body`), when the default (Basic whenever the metadata lists it) is not what the client
    /// was registered for. With discovery it must be one the metadata allows.
    #[serde(default)]
    pub client_auth: Option<tokenvault_providers::ClientAuth>,
    /// Extra query parameters on the redirect URI (e.g. `tenant=x`); kept on the callback.
    #[serde(default)]
    pub redirect_query: Option<String>,
    /// Zoom: the app's webhook secret token, to verify `app_deauthorized` events. Write-only;
    /// omitted on update keeps the stored one.
    #[serde(default)]
    pub webhook_secret: Option<SecretString>,
    /// Aircall: events to subscribe to for each connected account (a webhook is created at
    /// connect and deleted at disconnect), e.g. `["call.created", "call.ended"]`.
    #[serde(default)]
    pub provider_webhook_events: Option<Vec<String>>,
}

impl std::fmt::Debug for ProviderConfigInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfigInput")
            .field("provider", &self.provider)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A provider configuration as the API shows it: never the client secret.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderConfigView {
    pub id: String,
    pub key: String,
    pub provider: String,
    pub display_name: String,
    pub environment: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    /// Register this exact URI at the provider.
    pub redirect_uri: String,
    /// Where the provider sends its webhooks (Zoom: register it as the event notification
    /// endpoint for `app_deauthorized`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_set: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_webhook_events: Option<Vec<String>>,
    /// Aircall: register this as the app's install URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<CustomEndpoints>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const SECRET_FIELD: &str = "client_secret";
const MAX_SCOPES: usize = 50;

fn validate_key(key: &str) -> Result<String, ServiceError> {
    let ok = (1..=64).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(key.to_owned())
    } else {
        Err(ServiceError::invalid("invalid_key", "`key` must be 1-64 of a-z, 0-9, `-`, `_`"))
    }
}

fn validate_client_id(client_id: &str) -> Result<String, ServiceError> {
    let client_id = client_id.trim();
    if client_id.is_empty() || client_id.chars().count() > 512 || client_id.chars().any(char::is_control) {
        return Err(ServiceError::invalid("invalid_client_id", "`client_id` must be 1-512 printable characters"));
    }
    Ok(client_id.to_owned())
}

fn validate_secret(secret: &SecretString) -> Result<(), ServiceError> {
    let s = secret.expose_secret();
    if s.is_empty() || s.chars().count() > 4096 {
        return Err(ServiceError::invalid("invalid_client_secret", "`client_secret` must be 1-4096 characters"));
    }
    Ok(())
}

/// Scopes requested for a provider: unknown ones are refused with the list of valid ones.
fn validate_scopes(
    definition: &ProviderDefinition,
    requested: Option<Vec<String>>,
) -> Result<Vec<String>, ServiceError> {
    let policy = &definition.scope_policy;
    let Some(requested) = requested else {
        return Ok(definition.scopes.iter().filter(|s| s.default).map(|s| s.name.clone()).collect());
    };
    if !policy.configurable {
        if requested.is_empty() {
            return Ok(Vec::new());
        }
        let why =
            policy.explanation.clone().unwrap_or_else(|| "this provider's scopes cannot be configured here".into());
        return Err(ServiceError::invalid("scopes_not_configurable", why));
    }
    if requested.len() > MAX_SCOPES {
        return Err(ServiceError::invalid("invalid_scopes", format!("at most {MAX_SCOPES} scopes")));
    }
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested {
        let valid_shape = !scope.is_empty()
            && scope.len() <= 200
            && scope.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        let known = definition.scopes.iter().any(|s| s.name == scope);
        if !valid_shape || (!known && !policy.free_form) {
            let valid: Vec<&str> = definition.scopes.iter().map(|s| s.name.as_str()).collect();
            return Err(ServiceError::invalid(
                "unknown_scope",
                format!(
                    "`{}` is not a {} scope; valid scopes: {}",
                    scope.chars().take(64).collect::<String>(),
                    definition.display_name,
                    valid.join(", ")
                ),
            ));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

impl Vault {
    fn provider_definition(&self, id: &str) -> Result<std::sync::Arc<ProviderDefinition>, ServiceError> {
        self.catalog().get(id).ok_or_else(|| {
            ServiceError::invalid(
                "unknown_provider",
                format!(
                    "unknown provider `{}`; known providers: {}",
                    id.chars().take(64).collect::<String>(),
                    self.catalog().ids().join(", ")
                ),
            )
        })
    }

    fn redirect_uri(&self, config_id: &str, redirect_query: Option<&str>) -> Result<String, ServiceError> {
        let mut url = self
            .public_url()
            .join(&format!("connect/callback/{config_id}"))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        if let Some(query) = redirect_query.filter(|q| !q.is_empty()) {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            let reserved = ["code", "state", "error", "error_description", "iss"];
            if query.chars().count() > 512
                || pairs.is_empty()
                || pairs.iter().any(|(k, _)| reserved.contains(&k.as_str()))
            {
                return Err(ServiceError::invalid(
                    "invalid_redirect_query",
                    "`redirect_query` must be up to 512 characters of `name=value` pairs, without OAuth parameter names",
                ));
            }
            url.query_pairs_mut().extend_pairs(pairs);
        }
        Ok(url.to_string())
    }

    fn view(&self, record: ProviderConfigRecord) -> ProviderConfigView {
        let definition = self.catalog().get(&record.provider);
        let install_uri = definition
            .as_ref()
            .filter(|d| d.supports_install_uri)
            .and_then(|_| self.public_url().join(&format!("connect/install/{}", record.id)).ok())
            .map(|u| u.to_string());
        let scopes_note = definition
            .as_ref()
            .filter(|d| !d.scope_policy.configurable)
            .and_then(|d| d.scope_policy.explanation.clone());
        let endpoints = record.custom_endpoints.as_deref().and_then(|e| serde_json::from_str(e).ok());
        let inbound = definition.as_ref().and_then(|d| d.inbound_webhooks);
        let webhook_url = inbound.and_then(|style| {
            let path = match style {
                InboundWebhooks::ZoomSigned => "zoom",
                InboundWebhooks::AircallToken => "aircall",
            };
            self.public_url().join(&format!("webhooks/{path}/{}", record.id)).ok().map(|u| u.to_string())
        });
        ProviderConfigView {
            webhook_url,
            webhook_secret_set: (inbound == Some(InboundWebhooks::ZoomSigned))
                .then_some(record.webhook_secret.is_some()),
            provider_webhook_events: record.provider_webhook_events.clone(),
            display_name: definition.map(|d| d.display_name.clone()).unwrap_or_else(|| record.provider.clone()),
            id: record.id,
            key: record.key,
            provider: record.provider,
            environment: record.environment,
            client_id: record.client_id,
            client_secret_set: !record.client_secret.is_empty(),
            scopes: record.scopes,
            redirect_uri: record.redirect_uri,
            install_uri,
            scopes_note,
            endpoints,
            created_at: Timestamp::from_millis(record.created_at),
            updated_at: Timestamp::from_millis(record.updated_at),
        }
    }

    /// Validates an input into a record for `id` (sealing the secret to that id).
    async fn config_record(
        &self,
        app_id: &str,
        id: &str,
        input: ProviderConfigInput,
        created_at: i64,
        current_webhook_secret: Option<Vec<u8>>,
    ) -> Result<ProviderConfigRecord, ServiceError> {
        let definition = self.provider_definition(&input.provider)?;
        let (webhook_secret, provider_webhook_events) = self
            .inbound_webhook_settings(
                &definition,
                id,
                input.webhook_secret.as_ref(),
                input.provider_webhook_events.clone(),
                current_webhook_secret,
            )
            .await?;
        let key = validate_key(input.key.as_deref().unwrap_or(&definition.id))?;
        let client_id = validate_client_id(&input.client_id)?;
        validate_secret(&input.client_secret)?;
        let scopes = validate_scopes(&definition, input.scopes)?;
        let custom = if definition.configured_endpoints {
            let mut endpoints = match (input.issuer, input.endpoints) {
                (Some(issuer), None) => {
                    if let Ok(url) = url::Url::parse(&issuer) {
                        self.check_destination("issuer", &url).await?;
                    }
                    let discovered = discover(&self.provider_http, &issuer).await.map_err(|e| match e {
                        ProviderError::DestinationNotAllowed(_) => crate::outbound::egress::refused_input("issuer", &e),
                        other => ServiceError::invalid("discovery_failed", other.to_string()),
                    })?;
                    match input.client_auth {
                        Some(chosen) => discovered
                            .with_client_auth(chosen)
                            .map_err(|e| ServiceError::invalid("client_auth_not_supported", e.to_string()))?,
                        None => discovered,
                    }
                    .endpoints
                }
                (None, Some(mut endpoints)) => {
                    if let Some(chosen) = input.client_auth {
                        endpoints.client_auth = chosen;
                    }
                    endpoints
                }
                _ => {
                    return Err(ServiceError::invalid(
                        "endpoints_required",
                        "a custom provider needs exactly one of `issuer` (discovery) or `endpoints`",
                    ));
                }
            };
            if input.api_base_url.is_some() {
                endpoints.api_base_url = input.api_base_url;
            }
            self.check_endpoint_destinations(&endpoints).await?;
            Some(endpoints)
        } else {
            if input.issuer.is_some()
                || input.endpoints.is_some()
                || input.api_base_url.is_some()
                || input.client_auth.is_some()
            {
                return Err(ServiceError::invalid(
                    "endpoints_not_allowed",
                    format!(
                        "{} endpoints and client authentication come from the catalog (an operator overrides them with --providers-dir)",
                        definition.display_name
                    ),
                ));
            }
            None
        };
        // Resolving checks the environment and the endpoints' transport.
        let resolved = ResolvedProvider::new(definition.clone(), input.environment.as_deref(), custom.as_ref())
            .map_err(|e| ServiceError::invalid("invalid_provider_config", e.to_string()))?;
        let sealed = self
            .keys
            .seal(
                &SealContext::new("provider_configs", id, SECRET_FIELD),
                input.client_secret.expose_secret().as_bytes(),
            )
            .await?;
        Ok(ProviderConfigRecord {
            id: id.to_owned(),
            app_id: app_id.to_owned(),
            key,
            provider: definition.id.clone(),
            environment: resolved.environment,
            client_id,
            client_secret: sealed,
            scopes,
            custom_endpoints: custom.map(|c| serde_json::to_string(&c).expect("endpoints serialize")),
            redirect_uri: self.redirect_uri(id, input.redirect_query.as_deref())?,
            created_at,
            updated_at: self.now().as_millis(),
            webhook_secret,
            provider_webhook_events,
        })
    }

    /// Refuses a custom provider whose endpoints the vault calls (token, revocation, userinfo,
    /// API base) are at addresses the egress guard refuses. The authorization endpoint is not
    /// checked: only the user's browser goes there, never the vault.
    async fn check_endpoint_destinations(&self, endpoints: &CustomEndpoints) -> Result<(), ServiceError> {
        let called = [
            ("endpoints.token_url", Some(&endpoints.token_url)),
            ("endpoints.revoke_url", endpoints.revoke_url.as_ref()),
            ("endpoints.userinfo_url", endpoints.userinfo_url.as_ref()),
            ("api_base_url", endpoints.api_base_url.as_ref()),
        ];
        for (field, url) in called {
            if let Some(url) = url {
                self.check_destination(field, url).await?;
            }
        }
        Ok(())
    }

    /// Validates the provider-webhook settings, which only some providers have.
    async fn inbound_webhook_settings(
        &self,
        definition: &ProviderDefinition,
        id: &str,
        secret: Option<&SecretString>,
        events: Option<Vec<String>>,
        current_secret: Option<Vec<u8>>,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<String>>), ServiceError> {
        let style = definition.inbound_webhooks;
        if secret.is_some() && style != Some(InboundWebhooks::ZoomSigned) {
            return Err(ServiceError::invalid(
                "webhook_secret_not_supported",
                format!("{} does not sign webhooks with a secret token", definition.display_name),
            ));
        }
        if events.is_some() && style != Some(InboundWebhooks::AircallToken) {
            return Err(ServiceError::invalid(
                "provider_webhooks_not_supported",
                format!("the vault does not subscribe to {} webhooks", definition.display_name),
            ));
        }
        let sealed = match secret {
            Some(secret) => {
                let text = secret.expose_secret();
                if text.is_empty() || text.chars().count() > 512 {
                    return Err(ServiceError::invalid(
                        "invalid_webhook_secret",
                        "`webhook_secret` must be 1-512 characters",
                    ));
                }
                Some(
                    self.keys
                        .seal(&SealContext::new("provider_configs", id, "webhook_secret"), text.as_bytes())
                        .await?,
                )
            }
            None => current_secret,
        };
        if let Some(events) = &events {
            let valid = |e: &String| {
                (1..=100).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
            };
            if events.is_empty() || events.len() > 50 || !events.iter().all(valid) {
                return Err(ServiceError::invalid(
                    "invalid_provider_webhook_events",
                    "`provider_webhook_events` must be 1-50 event names such as `call.created`",
                ));
            }
        }
        Ok((sealed, events))
    }

    pub async fn create_provider_config(
        &self,
        app_id: &str,
        input: ProviderConfigInput,
        context: &crate::CallContext,
    ) -> Result<ProviderConfigView, ServiceError> {
        let id = IdKind::ProviderConfig.generate();
        let record = self.config_record(app_id, &id, input, self.now().as_millis(), None).await?;
        self.store.insert_provider_config(&record).await.map_err(|e| match e {
            tokenvault_store::StoreError::Conflict(what) => ServiceError::conflict("provider_config_exists", what),
            other => other.into(),
        })?;
        tracing::info!(app_id, provider_config_id = %id, provider = %record.provider, "provider configuration created");
        self.audit(crate::audit::AuditEntry::config(app_id, "provider_config.created", &id, context));
        Ok(self.view(record))
    }

    /// Replaces a configuration (provider and key cannot change; the id and redirect URI stay).
    pub async fn update_provider_config(
        &self,
        app_id: &str,
        id: &str,
        input: ProviderConfigInput,
        context: &crate::CallContext,
    ) -> Result<ProviderConfigView, ServiceError> {
        let id = IdKind::ProviderConfig.parse(id)?;
        let current = self
            .store
            .get_provider_config(app_id, &id)
            .await
            .map_err(ServiceError::from_store("provider configuration"))?;
        if input.provider != current.provider || input.key.as_deref().is_some_and(|k| k != current.key) {
            return Err(ServiceError::invalid(
                "immutable_field",
                "`provider` and `key` cannot change; create a new configuration instead",
            ));
        }
        let mut record =
            self.config_record(app_id, &id, input, current.created_at, current.webhook_secret.clone()).await?;
        record.key = current.key;
        self.store.update_provider_config(&record).await.map_err(ServiceError::from_store("provider configuration"))?;
        self.audit(crate::audit::AuditEntry::config(app_id, "provider_config.updated", &id, context));
        Ok(self.view(record))
    }

    pub async fn get_provider_config(&self, app_id: &str, id: &str) -> Result<ProviderConfigView, ServiceError> {
        let id = IdKind::ProviderConfig.parse(id)?;
        let record = self
            .store
            .get_provider_config(app_id, &id)
            .await
            .map_err(ServiceError::from_store("provider configuration"))?;
        Ok(self.view(record))
    }

    pub async fn list_provider_configs(&self, app_id: &str) -> Result<Vec<ProviderConfigView>, ServiceError> {
        Ok(self.store.list_provider_configs(app_id).await?.into_iter().map(|r| self.view(r)).collect())
    }

    /// Deletes a configuration that no live grant uses.
    pub async fn delete_provider_config(
        &self,
        app_id: &str,
        id: &str,
        context: &crate::CallContext,
    ) -> Result<(), ServiceError> {
        let id = IdKind::ProviderConfig.parse(id)?;
        self.store
            .get_provider_config(app_id, &id)
            .await
            .map_err(ServiceError::from_store("provider configuration"))?;
        let live = self.store.count_live_grants(&id).await?;
        if live > 0 {
            return Err(ServiceError::conflict(
                "provider_config_in_use",
                format!("{live} grant(s) still use this configuration; disconnect them first"),
            ));
        }
        self.store
            .delete_provider_config(app_id, &id)
            .await
            .map_err(ServiceError::from_store("provider configuration"))?;
        self.audit(crate::audit::AuditEntry::config(app_id, "provider_config.deleted", &id, context));
        Ok(())
    }

    /// The provider behaviour and client credentials of a stored configuration.
    pub(crate) async fn resolve_config(
        &self,
        record: &ProviderConfigRecord,
    ) -> Result<(ResolvedProvider, ClientCredentials), ServiceError> {
        let definition = self.catalog().get(&record.provider).ok_or_else(|| {
            ServiceError::Internal(format!("provider `{}` is no longer in the catalog", record.provider))
        })?;
        let custom: Option<CustomEndpoints> = record
            .custom_endpoints
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| ServiceError::Internal(format!("stored endpoints unreadable: {e}")))?;
        let resolved = ResolvedProvider::new(definition, Some(&record.environment), custom.as_ref())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let secret = self
            .keys
            .open(&SealContext::new("provider_configs", &record.id, SECRET_FIELD), &record.client_secret)
            .await?;
        let secret = String::from_utf8(secret.to_vec())
            .map_err(|_| ServiceError::Internal("client secret is not UTF-8".into()))?;
        Ok((
            resolved,
            ClientCredentials { client_id: record.client_id.clone(), client_secret: SecretString::from(secret) },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenvault_providers::Catalog;

    #[test]
    fn unknown_scopes_are_refused_with_the_valid_list() {
        let dialpad = Catalog::built_in().get("dialpad").unwrap();
        let err =
            validate_scopes(&dialpad, Some(vec!["calls:list".into(), "admin:all".into()])).unwrap_err().to_string();
        assert!(err.contains("admin:all") && err.contains("offline_access") && err.contains("screen_pop"), "{err}");
        assert_eq!(validate_scopes(&dialpad, None).unwrap(), ["calls:list", "change_log", "offline_access"]);
    }

    #[test]
    fn zoom_scopes_cannot_be_chosen() {
        let zoom = Catalog::built_in().get("zoom").unwrap();
        let err = validate_scopes(&zoom, Some(vec!["meeting:read".into()])).unwrap_err().to_string();
        assert!(err.contains("Scopes tab"), "{err}");
        assert!(validate_scopes(&zoom, None).unwrap().is_empty());
    }
}
