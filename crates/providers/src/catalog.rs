//! The provider catalog: built-in definitions, plus operator overrides from a directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use url::Url;

use crate::definition::{ProviderDefinition, ScopeStyle};

const BUILT_IN: &[(&str, &str)] = &[
    ("dialpad", include_str!("../catalog/dialpad.toml")),
    ("zoom", include_str!("../catalog/zoom.toml")),
    ("aircall", include_str!("../catalog/aircall.toml")),
    ("custom", include_str!("../catalog/custom.toml")),
];

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("provider definition {source_name} is invalid: {message}")]
    Invalid { source_name: String, message: String },
    #[error("cannot read provider directory {0}: {1}")]
    Io(String, std::io::Error),
}

fn invalid(source_name: &str, message: impl Into<String>) -> CatalogError {
    CatalogError::Invalid { source_name: source_name.to_owned(), message: message.into() }
}

/// All known providers, by id. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Catalog {
    providers: Arc<BTreeMap<String, Arc<ProviderDefinition>>>,
}

impl Catalog {
    /// The definitions embedded in the binary.
    pub fn built_in() -> Catalog {
        Self::load(None).expect("built-in provider definitions are valid")
    }

    /// Built-in definitions with the `*.toml` files of `overrides` applied: a file whose `id` is
    /// a built-in provider is merged over it key by key (so it may change only URLs); any other
    /// file adds a provider.
    pub fn load(overrides: Option<&Path>) -> Result<Catalog, CatalogError> {
        let mut raw: BTreeMap<String, toml::Table> = BTreeMap::new();
        for (name, text) in BUILT_IN {
            let table: toml::Table =
                text.parse().map_err(|e: toml::de::Error| invalid(name, e.message().to_owned()))?;
            raw.insert((*name).to_owned(), table);
        }
        if let Some(dir) = overrides {
            for (file_name, table) in read_dir(dir)? {
                let id = table
                    .get("id")
                    .and_then(toml::Value::as_str)
                    .ok_or_else(|| invalid(&file_name, "missing `id`"))?
                    .to_owned();
                match raw.get_mut(&id) {
                    Some(base) => merge(base, table),
                    None => {
                        raw.insert(id, table);
                    }
                }
            }
        }
        let mut providers = BTreeMap::new();
        for (id, table) in raw {
            let definition: ProviderDefinition = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| invalid(&id, e.message().to_owned()))?;
            validate(&definition)?;
            providers.insert(definition.id.clone(), Arc::new(definition));
        }
        Ok(Catalog { providers: Arc::new(providers) })
    }

    pub fn get(&self, id: &str) -> Option<Arc<ProviderDefinition>> {
        self.providers.get(id).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ProviderDefinition>> {
        self.providers.values()
    }

    pub fn ids(&self) -> Vec<&str> {
        self.providers.keys().map(String::as_str).collect()
    }
}

fn read_dir(dir: &Path) -> Result<Vec<(String, toml::Table)>, CatalogError> {
    let io = |e| CatalogError::Io(dir.display().to_string(), e);
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    let mut tables = Vec::new();
    for entry in entries {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| CatalogError::Io(name.clone(), e))?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| invalid(&name, e.message().to_owned()))?;
        tables.push((name, table));
    }
    Ok(tables)
}

/// Deep merge: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => merge(base_table, over_table),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn validate(def: &ProviderDefinition) -> Result<(), CatalogError> {
    let id = &def.id;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
        return Err(invalid(id, "`id` must be lowercase letters, digits, `-` or `_`"));
    }
    if !def.configured_endpoints && !def.environments.contains_key(&def.default_environment) {
        return Err(invalid(id, format!("default environment `{}` is not defined", def.default_environment)));
    }
    if def.authorize.scope_style == ScopeStyle::Fixed && def.authorize.fixed_scope.is_none() {
        return Err(invalid(id, "`scope_style = \"fixed\"` needs `fixed_scope`"));
    }
    if def.token.client_auth_used().is_none() {
        return Err(invalid(id, "`client_auth = \"either\"` needs `preferred_client_auth` (`basic` or `body`)"));
    }
    for (env, endpoints) in &def.environments {
        let urls = [
            Some(&endpoints.authorize_url),
            Some(&endpoints.token_url),
            endpoints.revoke_url.as_ref(),
            endpoints.identity_url.as_ref(),
            endpoints.api_base_url.as_ref(),
            endpoints.webhooks_url.as_ref(),
        ];
        for url in urls.into_iter().flatten() {
            check_transport(url).map_err(|m| invalid(id, format!("environment `{env}`: {m}")))?;
        }
    }
    Ok(())
}

/// Credentials only travel over HTTPS; plain HTTP is allowed for loopback hosts alone (local
/// development and tests, which must be configured explicitly).
pub(crate) fn check_transport(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(format!("`{url}` must use https (plain http only for loopback hosts)")),
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::*;

    #[test]
    fn built_in_catalog_has_the_four_providers() {
        let catalog = Catalog::built_in();
        assert_eq!(catalog.ids(), ["aircall", "custom", "dialpad", "zoom"]);
        let dialpad = catalog.get("dialpad").unwrap();
        assert_eq!(dialpad.environments.len(), 2);
        assert_eq!(dialpad.token.expires_in, ExpiresInStyle::SecondsOrEpoch);
        assert_eq!(dialpad.token.refresh_requires_scope.as_deref(), Some("offline_access"));
        let zoom = catalog.get("zoom").unwrap();
        assert_eq!(zoom.authorize.scope_style, ScopeStyle::None);
        assert_eq!(zoom.token.refresh, RefreshStyle::Rotating);
        assert_eq!(zoom.token.client_auth, ClientAuthSupport::Basic);
        assert_eq!(zoom.token.client_auth_used(), Some(ClientAuth::Basic));
        for provider in catalog.all() {
            assert_eq!(provider.authorize.method, AuthorizeMethod::RedirectGet, "{}", provider.id);
        }
        let aircall = catalog.get("aircall").unwrap();
        assert_eq!(aircall.token.encoding, TokenEncoding::Json);
        assert_eq!(aircall.authorize.fixed_scope.as_deref(), Some("public_api"));
        assert_eq!(aircall.authorize.pkce, PkceSupport::None);
    }

    #[test]
    fn override_merges_over_a_built_in_and_can_add_a_provider() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dialpad.toml"),
            "id = \"dialpad\"\n[environments.sandbox]\nauthorize_url = \"http://127.0.0.1:9/oauth2/authorize\"\n",
        )
        .unwrap();
        let mut extra = include_str!("../catalog/custom.toml").replace("id = \"custom\"", "id = \"acme\"");
        extra.push('\n');
        std::fs::write(dir.path().join("acme.toml"), extra).unwrap();
        let catalog = Catalog::load(Some(dir.path())).unwrap();
        let dialpad = catalog.get("dialpad").unwrap();
        assert_eq!(dialpad.environments["sandbox"].authorize_url.as_str(), "http://127.0.0.1:9/oauth2/authorize");
        // Keys the override did not name keep their built-in values.
        assert_eq!(dialpad.environments["sandbox"].token_url.as_str(), "https://sandbox.dialpad.com/oauth2/token");
        assert!(catalog.get("acme").is_some());
    }

    #[test]
    fn plain_http_to_a_non_loopback_host_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("zoom.toml"),
            "id = \"zoom\"\n[environments.production]\ntoken_url = \"http://zoom.example/oauth/token\"\n",
        )
        .unwrap();
        let err = Catalog::load(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("must use https"), "{err}");
    }

    #[test]
    fn unknown_keys_in_a_definition_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("zoom.toml"), "id = \"zoom\"\n[token]\nencodng = \"json\"\n").unwrap();
        let err = Catalog::load(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("encodng"), "{err}");
    }

    fn load_with(file: &str, contents: &str) -> Result<Catalog, CatalogError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file), contents).unwrap();
        Catalog::load(Some(dir.path()))
    }

    /// Quirk 2: Dialpad accepts either style; the vault sends body credentials by default.
    #[test]
    fn dialpad_accepts_either_client_auth_and_prefers_body() {
        let dialpad = Catalog::built_in().get("dialpad").unwrap();
        assert_eq!(dialpad.token.client_auth, ClientAuthSupport::Either);
        assert_eq!(dialpad.token.preferred_client_auth, Some(ClientAuth::Body));
        assert_eq!(dialpad.token.client_auth_used(), Some(ClientAuth::Body));
    }

    #[test]
    fn an_override_can_change_the_preference_or_pin_one_style() {
        let preferred =
            load_with("dialpad.toml", "id = \"dialpad\"\n[token]\npreferred_client_auth = \"basic\"\n").unwrap();
        let dialpad = preferred.get("dialpad").unwrap();
        assert_eq!(dialpad.token.client_auth, ClientAuthSupport::Either);
        assert_eq!(dialpad.token.client_auth_used(), Some(ClientAuth::Basic));
        // A fixed style wins over a preference inherited from the built-in definition.
        let pinned = load_with("dialpad.toml", "id = \"dialpad\"\n[token]\nclient_auth = \"basic\"\n").unwrap();
        assert_eq!(pinned.get("dialpad").unwrap().token.client_auth_used(), Some(ClientAuth::Basic));
    }

    #[test]
    fn either_without_a_preference_is_refused() {
        let custom = include_str!("../catalog/custom.toml")
            .replace("id = \"custom\"", "id = \"acme\"")
            .replace("client_auth = \"basic\"", "client_auth = \"either\"");
        let err = load_with("acme.toml", &custom).unwrap_err().to_string();
        assert!(err.contains("preferred_client_auth"), "{err}");
        let bogus = include_str!("../catalog/custom.toml")
            .replace("id = \"custom\"", "id = \"acme\"")
            .replace("client_auth = \"basic\"", "client_auth = \"header\"");
        let err = load_with("acme.toml", &bogus).unwrap_err().to_string();
        assert!(err.contains("header"), "{err}");
    }

    #[test]
    fn the_authorize_method_is_required_and_only_redirect_get_is_supported() {
        let post =
            load_with("zoom.toml", "id = \"zoom\"\n[authorize]\nmethod = \"form_post\"\n").unwrap_err().to_string();
        assert!(post.contains("form_post") && post.contains("redirect_get"), "{post}");
        let missing = include_str!("../catalog/custom.toml")
            .replace("id = \"custom\"", "id = \"acme\"")
            .replace("method = \"redirect_get\"", "");
        let err = load_with("acme.toml", &missing).unwrap_err().to_string();
        assert!(err.contains("method"), "{err}");
    }
}
