//! Resolved settings: flags and environment (through clap) over the TOML file over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use secrecy::SecretString;
use serde::Deserialize;
use tokenvault_providers::{EgressPolicy, parse_cidr};

use crate::cli::{GlobalArgs, LogFormat, ServeArgs};

/// Everything the binary needs to start. `Debug` never shows secrets.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub master_key_file: Option<PathBuf>,
    /// Accept a master key file that group or others can access (refused by default).
    pub allow_insecure_master_key_file: bool,
    pub log_format: LogFormat,
    pub admin_token: Option<SecretString>,
    pub max_body_bytes: usize,
    pub public_url: Option<url::Url>,
    pub providers_dir: Option<PathBuf>,
    pub key_cache_ttl: std::time::Duration,
    pub refresh: RefreshSettings,
    /// Audit rows older than this are deleted.
    pub audit_retention: std::time::Duration,
    /// Size and time limits of proxied calls.
    pub proxy_limits: tokenvault_service::ProxyLimits,
    /// Which addresses outbound calls may reach (default: public ones only).
    pub egress: EgressPolicy,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The bearer token `GET /metrics` requires, if any.
    pub metrics_token: Option<SecretString>,
}

/// Token lifecycle settings.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// `None`: no background refresher in this process.
    pub interval: Option<std::time::Duration>,
    /// `None`: no webhook delivery worker in this process.
    pub webhook_interval: Option<std::time::Duration>,
    pub lease: std::time::Duration,
    pub margin: std::time::Duration,
    pub concurrency_per_provider: usize,
}

/// The TOML file. Unknown keys are an error, so a typo does not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    master_key_file: Option<PathBuf>,
    allow_insecure_master_key_file: Option<bool>,
    log_format: Option<LogFormat>,
    admin_token: Option<String>,
    max_body_bytes: Option<usize>,
    public_url: Option<url::Url>,
    providers_dir: Option<PathBuf>,
    key_cache_ttl_seconds: Option<u64>,
    refresh_interval_seconds: Option<u64>,
    webhook_interval_seconds: Option<u64>,
    refresh_lease_seconds: Option<u64>,
    refresh_margin_seconds: Option<u64>,
    refresh_concurrency: Option<usize>,
    audit_retention_days: Option<u64>,
    proxy_max_request_bytes: Option<u64>,
    proxy_max_response_bytes: Option<u64>,
    proxy_response_timeout_seconds: Option<u64>,
    proxy_idle_timeout_seconds: Option<u64>,
    allow_private_egress: Option<bool>,
    egress_allow_cidrs: Option<Vec<String>>,
    ca_file: Option<PathBuf>,
    trusted_proxies: Option<Vec<String>>,
    metrics_token: Option<String>,
}

impl Settings {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:8080";
    pub const DEFAULT_DATA_DIR: &'static str = "./tokenvault-data";

    pub fn resolve(global: &GlobalArgs, serve: &ServeArgs) -> anyhow::Result<Settings> {
        let file = match &global.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let admin_token = serve.admin_token.clone().or(file.admin_token).filter(|t| !t.is_empty());
        if let Some(token) = &admin_token
            && token.len() < 32
        {
            bail!("the admin token must be at least 32 characters long");
        }
        let proxy_defaults = tokenvault_service::ProxyLimits::default();
        let seconds = |flag: Option<u64>, file: Option<u64>, default: std::time::Duration| {
            flag.or(file).map_or(default, |s| std::time::Duration::from_secs(s.max(1)))
        };
        let proxy_limits = tokenvault_service::ProxyLimits {
            max_request_bytes: serve
                .proxy_max_request_bytes
                .or(file.proxy_max_request_bytes)
                .unwrap_or(proxy_defaults.max_request_bytes),
            max_response_bytes: serve
                .proxy_max_response_bytes
                .or(file.proxy_max_response_bytes)
                .unwrap_or(proxy_defaults.max_response_bytes),
            response_timeout: seconds(
                serve.proxy_response_timeout_seconds,
                file.proxy_response_timeout_seconds,
                proxy_defaults.response_timeout,
            ),
            idle_timeout: seconds(
                serve.proxy_idle_timeout_seconds,
                file.proxy_idle_timeout_seconds,
                proxy_defaults.idle_timeout,
            ),
        };
        let proxies = if serve.trusted_proxies.is_empty() {
            file.trusted_proxies.unwrap_or_default()
        } else {
            serve.trusted_proxies.clone()
        };
        let trusted_proxies = proxies
            .iter()
            .filter(|c| !c.trim().is_empty())
            .map(|c| parse_cidr(c).map_err(|why| anyhow::anyhow!("trusted proxies: {why}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let cidrs = if serve.egress_allow_cidrs.is_empty() {
            file.egress_allow_cidrs.unwrap_or_default()
        } else {
            serve.egress_allow_cidrs.clone()
        };
        let allowed = cidrs
            .iter()
            .filter(|c| !c.trim().is_empty())
            .map(|c| parse_cidr(c).map_err(|why| anyhow::anyhow!("egress allowlist: {why}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut egress =
            EgressPolicy::new(serve.allow_private_egress.or(file.allow_private_egress).unwrap_or(false), allowed);
        if let Some(path) = serve.ca_file.clone().or(file.ca_file) {
            let pem = std::fs::read(&path).with_context(|| format!("cannot read the CA file {}", path.display()))?;
            egress = egress
                .with_extra_roots(pem)
                .map_err(|why| anyhow::anyhow!("the CA file {} cannot be used: {why}", path.display()))?;
        }
        let metrics_token = serve.metrics_token.clone().or(file.metrics_token).filter(|t| !t.is_empty());
        if metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            bail!("the metrics token must be at least 16 characters long");
        }
        Ok(Settings {
            metrics_token: metrics_token.map(SecretString::from),
            trusted_proxies,
            egress,
            proxy_limits,
            listen: serve
                .listen
                .or(file.listen)
                .unwrap_or_else(|| Self::DEFAULT_LISTEN.parse().expect("valid default")),
            data_dir: global.data_dir.clone().or(file.data_dir).unwrap_or_else(|| Self::DEFAULT_DATA_DIR.into()),
            database_url: global.database_url.clone().or(file.database_url),
            master_key_file: global.master_key_file.clone().or(file.master_key_file),
            allow_insecure_master_key_file: global
                .allow_insecure_master_key_file
                .or(file.allow_insecure_master_key_file)
                .unwrap_or(false),
            log_format: global.log_format.or(file.log_format).unwrap_or(LogFormat::Human),
            admin_token: admin_token.map(SecretString::from),
            max_body_bytes: serve.max_body_bytes.or(file.max_body_bytes).unwrap_or(1024 * 1024),
            public_url: serve.public_url.clone().or(file.public_url),
            providers_dir: global.providers_dir.clone().or(file.providers_dir),
            key_cache_ttl: std::time::Duration::from_secs(
                global.key_cache_ttl_seconds.or(file.key_cache_ttl_seconds).unwrap_or(5),
            ),
            audit_retention: std::time::Duration::from_secs(
                86_400 * serve.audit_retention_days.or(file.audit_retention_days).unwrap_or(365).max(1),
            ),
            refresh: RefreshSettings {
                interval: Some(serve.refresh_interval_seconds.or(file.refresh_interval_seconds).unwrap_or(5))
                    .filter(|s| *s > 0)
                    .map(std::time::Duration::from_secs),
                webhook_interval: Some(serve.webhook_interval_seconds.or(file.webhook_interval_seconds).unwrap_or(1))
                    .filter(|s| *s > 0)
                    .map(std::time::Duration::from_secs),
                lease: std::time::Duration::from_secs(
                    serve.refresh_lease_seconds.or(file.refresh_lease_seconds).unwrap_or(30).max(1),
                ),
                margin: std::time::Duration::from_secs(
                    serve.refresh_margin_seconds.or(file.refresh_margin_seconds).unwrap_or(120),
                ),
                concurrency_per_provider: serve.refresh_concurrency.or(file.refresh_concurrency).unwrap_or(4).max(1),
            },
        })
    }

    /// The database URL: the configured one, or SQLite inside the data directory.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.embedded_database_path().display()),
        }
    }

    pub fn uses_embedded_database(&self) -> bool {
        self.database_url.as_deref().is_none_or(|url| url.starts_with("sqlite:"))
    }

    pub fn embedded_database_path(&self) -> PathBuf {
        self.data_dir.join("tokenvault.db")
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    // toml's messages quote the offending line, which may hold a secret: report position only.
    toml::from_str(&text).map_err(|err| {
        let place = err.span().map(|s| format!(" at byte {}", s.start)).unwrap_or_default();
        let what = err.message().split('`').next().unwrap_or("invalid value").trim().to_owned();
        anyhow::anyhow!("config file {} is invalid{place}: {what}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tv.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9999\"\ndata_dir = \"/from/file\"\n").unwrap();
        let global = GlobalArgs { config: Some(path), data_dir: Some("/from/flag".into()), ..Default::default() };
        let settings = Settings::resolve(&global, &ServeArgs::default()).unwrap();
        assert_eq!(settings.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(settings.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(settings.log_format, LogFormat::Human);
    }

    #[test]
    fn unknown_file_keys_are_rejected_without_echoing_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tv.toml");
        std::fs::write(&path, "admin_tokn = \"super-secret-value-that-must-not-leak\"\n").unwrap();
        let global = GlobalArgs { config: Some(path), ..Default::default() };
        let err = Settings::resolve(&global, &ServeArgs::default()).unwrap_err().to_string();
        assert!(!err.contains("super-secret"), "{err}");
        assert!(err.contains("invalid"), "{err}");
    }

    #[test]
    fn the_egress_guard_is_on_unless_allowed_and_flags_win_over_the_file() {
        let defaults = Settings::resolve(&GlobalArgs::default(), &ServeArgs::default()).unwrap();
        assert_eq!(defaults.egress, EgressPolicy::guarded());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tv.toml");
        std::fs::write(&path, "allow_private_egress = true\negress_allow_cidrs = [\"10.1.0.0/16\", \"fd00::/8\"]\n")
            .unwrap();
        let global = GlobalArgs { config: Some(path), ..Default::default() };
        let from_file = Settings::resolve(&global, &ServeArgs::default()).unwrap();
        assert!(from_file.egress.allows_private());
        assert_eq!(from_file.egress.allowed_cidrs().len(), 2);

        let serve = ServeArgs {
            allow_private_egress: Some(false),
            egress_allow_cidrs: vec!["127.0.0.0/8".into()],
            ..Default::default()
        };
        let flagged = Settings::resolve(&global, &serve).unwrap();
        assert!(!flagged.egress.allows_private());
        assert_eq!(flagged.egress.allowed_cidrs().iter().map(ToString::to_string).collect::<Vec<_>>(), ["127.0.0.0/8"]);

        let bad = ServeArgs { egress_allow_cidrs: vec!["10.0.0.0/33".into()], ..Default::default() };
        let err = Settings::resolve(&GlobalArgs::default(), &bad).unwrap_err().to_string();
        assert!(err.contains("10.0.0.0/33"), "{err}");
    }

    #[test]
    fn egress_flags_parse_from_the_command_line() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "tokenvault",
            "serve",
            "--allow-private-egress",
            "--egress-allow-cidr",
            "10.1.0.0/16",
            "--egress-allow-cidr",
            "10.2.0.0/16,10.3.0.0/16",
        ])
        .unwrap();
        let crate::cli::Command::Serve(serve) = cli.command else { panic!("serve") };
        assert_eq!(serve.allow_private_egress, Some(true));
        assert_eq!(serve.egress_allow_cidrs, ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]);
        let cli = crate::cli::Cli::try_parse_from(["tokenvault", "serve", "--allow-private-egress", "false"]).unwrap();
        let crate::cli::Command::Serve(serve) = cli.command else { panic!("serve") };
        assert_eq!(serve.allow_private_egress, Some(false));
    }

    #[test]
    fn the_insecure_master_key_file_override_is_off_unless_asked_for() {
        use clap::Parser;
        let defaults = Settings::resolve(&GlobalArgs::default(), &ServeArgs::default()).unwrap();
        assert!(!defaults.allow_insecure_master_key_file);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tv.toml");
        std::fs::write(&path, "allow_insecure_master_key_file = true\n").unwrap();
        let global = GlobalArgs { config: Some(path), ..Default::default() };
        assert!(Settings::resolve(&global, &ServeArgs::default()).unwrap().allow_insecure_master_key_file);
        let cli = crate::cli::Cli::try_parse_from(["tokenvault", "apps", "list", "--allow-insecure-master-key-file"])
            .unwrap();
        assert_eq!(cli.global.allow_insecure_master_key_file, Some(true));
    }

    #[test]
    fn default_database_is_sqlite_in_data_dir() {
        let settings = Settings::resolve(&GlobalArgs::default(), &ServeArgs::default()).unwrap();
        assert!(settings.uses_embedded_database());
        assert_eq!(settings.effective_database_url(), "sqlite://./tokenvault-data/tokenvault.db?mode=rwc");
    }
}
