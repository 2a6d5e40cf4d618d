//! Command-line interface. Every setting is also an environment variable `TOKENVAULT_*` and a key
//! in the optional TOML file given by `--config`; flags win over the environment, which wins over
//! the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(name = "tokenvault", version, about = "A self-hosted credential vault for apps and AI agents")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (keys as in the configuration reference of README.md).
    #[arg(long, global = true, env = "TOKENVAULT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database and the generated master key file.
    #[arg(long, global = true, env = "TOKENVAULT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://...`; default: SQLite in the data directory.
    #[arg(long, global = true, env = "TOKENVAULT_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// File holding the base64 master key (instead of TOKENVAULT_MASTER_KEY).
    #[arg(long, global = true, env = "TOKENVAULT_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Use a master key file that group or others can access (mode & 0o077 != 0), which is
    /// otherwise refused; for a file that something else protects (e.g. a group-readable mount).
    #[arg(
        long,
        global = true,
        env = "TOKENVAULT_ALLOW_INSECURE_MASTER_KEY_FILE",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_insecure_master_key_file: Option<bool>,
    /// Directory of provider definition files (`*.toml`) that add to or override the built-in catalog.
    #[arg(long, global = true, env = "TOKENVAULT_PROVIDERS_DIR", value_name = "DIR")]
    pub providers_dir: Option<PathBuf>,
    /// Seconds a process trusts its cached data keys; a rotation waits twice this before its
    /// final sweep. Every process sharing a database should use the same value.
    #[arg(long, global = true, env = "TOKENVAULT_KEY_CACHE_TTL_SECONDS", value_name = "SECONDS")]
    pub key_cache_ttl_seconds: Option<u64>,
    /// Log format.
    #[arg(long, global = true, env = "TOKENVAULT_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
// Parsed once at start: the size of `Serve`'s many optional flags does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Mint an admin token for the admin API (printed once).
    AdminToken {
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// Manage data-encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage apps (tenants).
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Manage app API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TOKENVAULT_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The URL browsers and providers reach this vault at (redirect URIs start here).
    /// Default: http://<listen address>.
    #[arg(long, env = "TOKENVAULT_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<url::Url>,
    /// A fixed admin token accepted by the admin API, in addition to minted ones.
    #[arg(long, env = "TOKENVAULT_ADMIN_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// Seconds between background refresher passes; 0 turns the refresher off.
    #[arg(long, env = "TOKENVAULT_REFRESH_INTERVAL_SECONDS", value_name = "SECONDS")]
    pub refresh_interval_seconds: Option<u64>,
    /// Seconds between webhook delivery passes; 0 turns delivery off in this process.
    #[arg(long, env = "TOKENVAULT_WEBHOOK_INTERVAL_SECONDS", value_name = "SECONDS")]
    pub webhook_interval_seconds: Option<u64>,
    /// Seconds a refresh lease holds (a crashed instance blocks a grant at most this long).
    #[arg(long, env = "TOKENVAULT_REFRESH_LEASE_SECONDS", value_name = "SECONDS")]
    pub refresh_lease_seconds: Option<u64>,
    /// A token expiring within this many seconds is refreshed before it is handed out.
    #[arg(long, env = "TOKENVAULT_REFRESH_MARGIN_SECONDS", value_name = "SECONDS")]
    pub refresh_margin_seconds: Option<u64>,
    /// Background refreshes running at once, per provider.
    #[arg(long, env = "TOKENVAULT_REFRESH_CONCURRENCY", value_name = "N")]
    pub refresh_concurrency: Option<usize>,
    /// Days the audit log is kept.
    #[arg(long, env = "TOKENVAULT_AUDIT_RETENTION_DAYS", value_name = "DAYS")]
    pub audit_retention_days: Option<u64>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "TOKENVAULT_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest request body the proxy forwards, in bytes (default 10 MiB).
    #[arg(long, env = "TOKENVAULT_PROXY_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub proxy_max_request_bytes: Option<u64>,
    /// Largest response body the proxy passes back, in bytes (default 100 MiB).
    #[arg(long, env = "TOKENVAULT_PROXY_MAX_RESPONSE_BYTES", value_name = "BYTES")]
    pub proxy_max_response_bytes: Option<u64>,
    /// Seconds the provider has to answer a proxied call with its status and headers (default 60).
    #[arg(long, env = "TOKENVAULT_PROXY_RESPONSE_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub proxy_response_timeout_seconds: Option<u64>,
    /// Longest pause, in seconds, between two pieces of a proxied response body (default 60).
    #[arg(long, env = "TOKENVAULT_PROXY_IDLE_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub proxy_idle_timeout_seconds: Option<u64>,
    /// Let outbound calls (providers, proxy, app webhooks) reach loopback, private and link-local
    /// addresses, e.g. providers running on this machine. Off by default: such destinations are refused.
    #[arg(
        long,
        env = "TOKENVAULT_ALLOW_PRIVATE_EGRESS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_private_egress: Option<bool>,
    /// A range outbound calls may reach although it is not public, e.g. an internal identity
    /// provider's network (repeatable; the environment variable takes a comma-separated list).
    #[arg(
        long = "egress-allow-cidr",
        env = "TOKENVAULT_EGRESS_ALLOW_CIDRS",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub egress_allow_cidrs: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new data key and re-seal every stored secret with it, online.
    Rotate,
    /// List data keys and how many stored values each one seals.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    Create { name: String },
    List,
    Delete { app_id: String },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Mint a key for an app (printed once).
    Create {
        app_id: String,
        #[arg(long, default_value = "default")]
        name: String,
    },
    List {
        app_id: String,
    },
    Revoke {
        app_id: String,
        key_id: String,
    },
}
