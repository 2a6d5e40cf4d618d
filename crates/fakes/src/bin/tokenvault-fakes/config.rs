//! The demo binary's configuration: a TOML file and/or command-line flags.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;
use tokenvault_fakes::{ClientRegistration, ConsentMode, FakeUser, Provider, Variant};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<IpAddr>,
    pub base_port: Option<u16>,
    pub consent: Option<ConsentMode>,
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub variants: Vec<Variant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub provider: Provider,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    /// Omitted: the provider's demo default (see `default_scopes`).
    pub scopes: Option<Vec<String>>,
    pub install_uri: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UserConfig {
    pub provider: Provider,
    #[serde(flatten)]
    pub user: FakeUser,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

impl ClientConfig {
    pub fn into_registration(self) -> (Provider, ClientRegistration) {
        let scopes = self.scopes.unwrap_or_else(|| default_scopes(self.provider));
        let registration = ClientRegistration {
            client_id: self.client_id,
            client_secret: self.client_secret,
            redirect_uris: self.redirect_uris,
            scopes,
            install_uri: self.install_uri,
        };
        (self.provider, registration)
    }
}

/// Scopes a demo client gets when none are configured: everything the provider documents.
pub fn default_scopes(provider: Provider) -> Vec<String> {
    let scopes: &[&str] = match provider {
        Provider::DialpadProduction | Provider::DialpadSandbox => &[
            "offline_access",
            "calls:list",
            "change_log",
            "recordings_export",
            "message_content_export",
            "screen_pop",
            "fax_message",
        ],
        Provider::Zoom => &["user:read:user", "meeting:read:meeting"],
        Provider::Aircall => &["public_api"],
        Provider::Generic => &["openid", "profile", "email", "offline_access"],
    };
    scopes.iter().map(|s| (*s).to_owned()).collect()
}

/// `provider:client_id:client_secret:redirect_uri` (the redirect URI may contain `:`).
pub fn parse_client_flag(flag: &str) -> anyhow::Result<ClientConfig> {
    let mut parts = flag.splitn(4, ':');
    let (Some(provider), Some(client_id), Some(client_secret), Some(redirect_uri)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!("--client must be provider:client_id:client_secret:redirect_uri, got {flag:?}");
    };
    let provider: Provider = provider.parse().map_err(anyhow::Error::msg)?;
    Ok(ClientConfig {
        provider,
        client_id: client_id.to_owned(),
        client_secret: client_secret.to_owned(),
        redirect_uris: vec![redirect_uri.to_owned()],
        scopes: None,
        install_uri: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_flag_keeps_colons_in_the_redirect_uri() {
        let c = parse_client_flag("dialpad_production:demo-id:demo-secret:http://127.0.0.1:8080/cb").unwrap();
        assert_eq!(c.provider, Provider::DialpadProduction);
        assert_eq!(c.redirect_uris, vec!["http://127.0.0.1:8080/cb".to_owned()]);
        assert!(parse_client_flag("zoom:id:secret").is_err());
        assert!(parse_client_flag("nope:id:secret:http://x").is_err());
    }

    #[test]
    fn toml_config_parses() {
        let config: FileConfig = toml::from_str(
            r#"
            base_port = 9100
            consent = "auto_approve"
            [[clients]]
            provider = "aircall"
            client_id = "a"
            client_secret = "b"
            redirect_uris = ["http://127.0.0.1:8080/cb"]
            install_uri = "http://127.0.0.1:8080/install"
            [[users]]
            provider = "zoom"
            id = "u"
            account_id = "acc"
            name = "Z Z"
            email = "z@example.com"
            [[variants]]
            name = "dialpad_expires_in"
            value = "epoch"
            [[variants]]
            name = "access_token_lifetime"
            value = { provider = "zoom", seconds = 120 }
            "#,
        )
        .unwrap();
        assert_eq!(config.base_port, Some(9100));
        assert_eq!(config.clients.len(), 1);
        assert_eq!(config.variants.len(), 2);
        assert_eq!(config.users[0].user.id, "u");
    }
}
