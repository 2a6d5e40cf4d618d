//! Command-line interface. Every server setting is also an environment variable `TOKENVAULT_*` and
//! a key in the optional TOML file given by `--config`; flags win over the environment, which wins
//! over the file.
//!
//! Besides `serve`, the binary is the vault's client: every operation of the HTTP API has a
//! command, sent to a running vault named by a stored profile or `--url` (see `remote`). Only
//! `admin-token` (bootstrap) and `keys rotate` (needs the master key) always open the database
//! directly; a few app and key commands still can, for scripts written before profiles existed.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(name = "tokenvault", version, about = "A self-hosted credential vault for apps and AI agents")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// `Debug` without the credentials.
impl std::fmt::Debug for LoginArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginArgs")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "[REDACTED]"))
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("no_verify", &self.no_verify)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Server and direct database options")]
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
    /// Mint an admin token directly in the database (bootstrap; printed once). Over the API:
    /// `tokenvault admin-tokens create`.
    AdminToken {
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// Write a consistent copy of the embedded SQLite database to FILE (a new file, mode 0600)
    /// while the vault keeps serving (direct database mode). PostgreSQL: use pg_dump.
    Backup {
        #[arg(value_name = "FILE")]
        to: PathBuf,
    },
    /// Store a vault URL and credential as a profile in the CLI config file (mode 0600).
    Login(LoginArgs),
    /// Remove a profile (the one `--profile` or TOKENVAULT_PROFILE names; default `default`).
    Logout,
    /// List the stored profiles (never their credentials).
    Profiles,
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Apps (tenants). Admin token; `get` and `update` without an id act on the API key's own app.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// App API keys. With an APP_ID: admin token; without: the API key's own app.
    #[command(subcommand)]
    ApiKeys(ApiKeysCommand),
    /// Minted admin tokens (admin token).
    #[command(subcommand)]
    AdminTokens(AdminTokensCommand),
    /// Operators who sign in to the portal at /portal (admin token).
    #[command(subcommand)]
    Operators(OperatorsCommand),
    /// Data-encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The provider catalog (no credential needed).
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// The app's provider configurations (API key).
    #[command(subcommand)]
    ProviderConfigs(ProviderConfigsCommand),
    /// Connect sessions: send an end user through a provider's OAuth flow (API key).
    #[command(subcommand)]
    ConnectSessions(ConnectSessionsCommand),
    /// Wallet sessions: a link that lets one end user see and revoke their connections (API key).
    #[command(subcommand)]
    WalletSessions(WalletSessionsCommand),
    /// Grants: connected accounts, their tokens and disconnects (API key).
    #[command(subcommand)]
    Grants(GrantsCommand),
    /// Installs started at the provider (API key).
    #[command(subcommand)]
    Installs(InstallsCommand),
    /// Access policies (API key).
    #[command(subcommand)]
    Policies(PoliciesCommand),
    /// Managed secrets: the app's own API credentials, injected by the proxy (API key).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// The app's webhook endpoints and delivery log (API key).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// The app's audit log (API key).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Agents: the app's AI agents as callers with keys of their own (API key).
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Delegations of grants to agents (API key).
    #[command(subcommand)]
    Delegations(DelegationsCommand),
    /// Approvals of proxied calls held by a `require_approval` policy rule (API key).
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
}

#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// Create an operator; the password is read from --password-file or standard input.
    Create {
        #[arg(long)]
        email: String,
        /// `owner`, `admin` (default) or `viewer`.
        #[arg(long)]
        role: Option<String>,
        /// File holding the password [default: standard input]; one trailing newline is dropped.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// The app's approvals, newest first (an agent key: its own).
    List {
        /// `pending`, `approved`, `denied`, `expired`, `executing`, `executed` or `failed`.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        grant_id: Option<String>,
        /// The `next_cursor` of the previous page.
        #[arg(long)]
        before: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One approval; `--wait` waits up to that many seconds (at most 25) while it is pending.
    Get {
        id: String,
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
    /// Approve a held call (as this key; never the key or agent that asked).
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        /// Record the end user's decision (the app authenticated them) instead of the key's own.
        #[arg(long)]
        for_end_user: bool,
    },
    /// Deny a held call.
    Deny {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[arg(long)]
        for_end_user: bool,
    },
    /// A one-use page link on which the end user (or an operator) approves or denies.
    Link {
        id: String,
        /// `end_user` (default) or `operator`.
        #[arg(long)]
        approver: Option<String>,
    },
    /// Execute an approved call (the caller that asked, once); prints the provider's answer.
    Execute { id: String },
    /// Print the kept answer of an executed call (once).
    Result { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Register an agent.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    List,
    Get {
        agent_id: String,
    },
    /// Refuse the agent's keys at once, until `activate`.
    Suspend {
        agent_id: String,
    },
    Activate {
        agent_id: String,
    },
    /// Revoke the agent and every key it has, for good.
    Revoke {
        agent_id: String,
    },
    /// Mint a key for the agent (printed once; default scopes `grants:read`, `proxy:execute`).
    Key {
        agent_id: String,
        #[arg(long, default_value = "default")]
        name: String,
        #[command(flatten)]
        key: KeyArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DelegationsCommand {
    /// Delegate a grant (or managed secret) to an agent, proxy-only unless `--allow-token-retrieval`.
    Create {
        agent_id: String,
        grant_id: String,
        /// An HTTP method the agent may proxy (repeat); none: any.
        #[arg(long = "method", value_name = "METHOD")]
        methods: Vec<String>,
        /// A path pattern the agent may proxy (repeat; `*` within a segment, `**` across); none: any.
        #[arg(long = "path", value_name = "PATTERN")]
        paths: Vec<String>,
        /// Also let the agent retrieve the raw access token.
        #[arg(long)]
        allow_token_retrieval: bool,
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<u64>,
    },
    /// An agent's delegations, revoked ones included.
    List {
        agent_id: String,
    },
    Get {
        id: String,
    },
    /// End a delegation at once (the grant stays).
    Revoke {
        id: String,
    },
}

/// How the CLI reaches a vault, and how it prints. Everything here is global: it may be given
/// before or after the subcommand.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Client options")]
pub struct RemoteArgs {
    /// URL of a running vault, instead of a profile. The credential then comes from
    /// TOKENVAULT_ADMIN_TOKEN or TOKENVAULT_API_KEY.
    #[arg(long, global = true, env = "TOKENVAULT_URL", value_name = "URL")]
    pub url: Option<String>,
    /// Profile of the CLI config file to use [default: default].
    #[arg(long, global = true, env = "TOKENVAULT_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// CLI config file holding the profiles [default: $XDG_CONFIG_HOME/tokenvault/cli.toml or
    /// ~/.config/tokenvault/cli.toml].
    #[arg(long, global = true, env = "TOKENVAULT_CLI_CONFIG", value_name = "FILE")]
    pub cli_config: Option<PathBuf>,
    /// Print the API's JSON as is instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Open the database directly instead of calling a vault (apps create/list/delete, api-keys
    /// create/list/revoke for an app, keys list). Without a URL or profile these do so anyway.
    #[arg(long, global = true)]
    pub direct: bool,
    /// The actor declared to the vault for audit and policies (`x-actor-type`, `x-actor-id`):
    /// `ai_agent`, `service`, `user` or `system`, optionally with `:ID`.
    #[arg(long, global = true, env = "TOKENVAULT_ACTOR", value_name = "TYPE[:ID]")]
    pub actor: Option<String>,
    /// Why the actor makes the call (`x-actor-reason`).
    #[arg(long, global = true, env = "TOKENVAULT_ACTOR_REASON", value_name = "TEXT")]
    pub actor_reason: Option<String>,
}

#[derive(Clone, Args)]
#[command(group = clap::ArgGroup::new("credential").required(true).multiple(true).args(["admin_token", "api_key"]))]
pub struct LoginArgs {
    /// An admin token (`tva_…` or the fixed one); `-` reads it from standard input.
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// An app API key (`tvk_…`); `-` reads it from standard input.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Store the profile without calling the vault to check the URL and credential.
    #[arg(long)]
    pub no_verify: bool,
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
    /// PEM file of certificate authorities to trust for outbound TLS (providers, proxy, app
    /// webhooks) besides the system's; `SSL_CERT_FILE` instead replaces the system's roots.
    #[arg(long, env = "TOKENVAULT_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// A reverse proxy in front of the vault (address or CIDR, repeatable; the environment
    /// variable takes a comma-separated list): requests from it are attributed to the client
    /// it names in `X-Forwarded-For`, which IP-allowlist policies then judge.
    #[arg(long = "trusted-proxy", env = "TOKENVAULT_TRUSTED_PROXIES", value_name = "CIDR", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// A bearer token that `GET /metrics` requires (16+ characters); without one the endpoint is open.
    #[arg(long, env = "TOKENVAULT_METRICS_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub metrics_token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new data key and re-seal every stored secret with it, online. Always opens the
    /// database directly (it needs the master key).
    Rotate,
    /// List data keys and how many stored values each one seals.
    List,
}

/// Cursor paging of list commands.
#[derive(Debug, Clone, Default, Args)]
pub struct PageArgs {
    /// Start after this id (a list's `next_cursor`).
    #[arg(long, value_name = "ID")]
    pub after: Option<String>,
    /// At most this many results.
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}

/// A JSON request body, for fields no flag covers. Flags given as well win over its fields.
#[derive(Debug, Clone, Default, Args)]
pub struct BodyArgs {
    /// The request body as JSON (without secrets: those go in files or standard input).
    #[arg(long, value_name = "JSON", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// A file holding the request body as JSON; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// List apps.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show an app (without APP_ID: the API key's own app).
    Get { app_id: Option<String> },
    /// Create an app.
    Create { name: String },
    /// Change an app's name and connect settings (without APP_ID: the API key's own app).
    Update {
        app_id: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// An origin allowed as a connect-session return URL (repeatable; replaces the list).
        #[arg(long = "return-origin", value_name = "ORIGIN")]
        return_origins: Vec<String>,
        /// Where installs started at the provider are sent to be claimed.
        #[arg(long, value_name = "URL", conflicts_with = "no_install_return_url")]
        install_return_url: Option<String>,
        /// Refuse installs started at the provider.
        #[arg(long)]
        no_install_return_url: bool,
        #[command(flatten)]
        branding: BrandingArgs,
        #[command(flatten)]
        body: BodyArgs,
    },
    /// Delete an app and everything it owns.
    Delete { app_id: String },
}

/// How the app shows itself on the hosted Connect UI and the wallet; an empty value clears one.
#[derive(Debug, Clone, Default, Args)]
pub struct BrandingArgs {
    /// The name end users see (default: the app's name).
    #[arg(long, value_name = "NAME")]
    pub display_name: Option<String>,
    /// An https image URL shown on the hosted pages.
    #[arg(long, value_name = "URL")]
    pub logo_url: Option<String>,
    /// The colour of buttons and links, `#rrggbb`.
    #[arg(long, value_name = "#RRGGBB")]
    pub accent_color: Option<String>,
    /// Where end users get help: an https URL or `mailto:` address.
    #[arg(long, value_name = "URL")]
    pub support_url: Option<String>,
}

/// What a new key may do, for how long and from where.
#[derive(Debug, Clone, Default, Args)]
pub struct KeyArgs {
    /// A scope the key gets (repeat): e.g. `grants:read`, `proxy:execute`, `tokens:retrieve`,
    /// `*:read`. Keys get exactly what is named.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Full access (the scope `*`), as keys minted before scopes have.
    #[arg(long, conflicts_with = "scopes")]
    pub full_access: bool,
    /// The key stops working after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub expires_in: Option<u64>,
    /// An address range the key may be used from (repeat); none: anywhere.
    #[arg(long = "allow-cidr", value_name = "CIDR")]
    pub allowed_cidrs: Vec<String>,
    /// At most REQUESTS per SECONDS, e.g. `100/60`.
    #[arg(long, value_name = "REQUESTS/SECONDS")]
    pub rate_limit: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Mint a key (printed once): `create APP_ID --scope …` (admin token), or without APP_ID a
    /// key of the API key's own app, with no more than that key holds (needs `keys:admin`).
    Create {
        app_id: Option<String>,
        #[arg(long, default_value = "default")]
        name: String,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Rotate a key: a new one is printed once, the old one works for the grace period (default
    /// 7 days, at most 30), then stops. `rotate APP_ID KEY_ID` (admin token) or `rotate KEY_ID`.
    Rotate {
        #[arg(value_name = "APP_ID|KEY_ID")]
        first: String,
        #[arg(value_name = "KEY_ID")]
        key_id: Option<String>,
        #[arg(long, value_name = "SECONDS")]
        grace_seconds: Option<u64>,
    },
    /// Derive a short-lived child of the API key in use (default: its scopes, 1 hour; at most
    /// 24 hours), revoked with it.
    Derive {
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// List keys (never secrets): an app's (admin token), or without APP_ID the API key's own app's.
    List { app_id: Option<String> },
    /// Revoke a key at once: `revoke APP_ID KEY_ID` (admin token) or `revoke KEY_ID` (API key).
    Revoke {
        /// The app (then KEY_ID follows), or alone the API key's own app's key to revoke.
        #[arg(value_name = "APP_ID|KEY_ID")]
        first: String,
        /// The key to revoke, after APP_ID.
        #[arg(value_name = "KEY_ID")]
        key_id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminTokensCommand {
    /// List minted admin tokens, revoked ones included (never secrets).
    List,
    /// Mint an admin token (printed once).
    Create {
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke a minted admin token: it is refused from the next call on.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// The providers this vault knows.
    List,
}

/// The fields of a provider configuration.
#[derive(Debug, Clone, Default, Args)]
pub struct ProviderConfigArgs {
    /// Catalog id: `dialpad`, `zoom`, `aircall`, `custom`, ... (update: default the current one).
    #[arg(long)]
    pub provider: Option<String>,
    /// A short name unique within the app [default: the provider id].
    #[arg(long)]
    pub key: Option<String>,
    /// Provider environment, e.g. Dialpad's `production` or `sandbox`.
    #[arg(long)]
    pub environment: Option<String>,
    #[arg(long)]
    pub client_id: Option<String>,
    /// File holding the client secret; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// A scope to request (repeatable) [default: the provider's default scopes].
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Generic providers: the issuer to discover endpoints from.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Generic providers: the API base URL the credential may be sent to.
    #[arg(long, value_name = "URL")]
    pub api_base_url: Option<String>,
    /// Extra query parameters on the redirect URI, e.g. `tenant=x`.
    #[arg(long, value_name = "QUERY")]
    pub redirect_query: Option<String>,
    /// Zoom: file holding the app's webhook secret token; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    #[command(flatten)]
    pub body: BodyArgs,
}

#[derive(Debug, Subcommand)]
pub enum ProviderConfigsCommand {
    List,
    Get {
        id: String,
    },
    /// Configure a provider for the app. The answer shows the redirect URI to register.
    Create(ProviderConfigArgs),
    /// Replace a configuration (everything but provider and key; PUT semantics: fields not given
    /// return to their defaults).
    Update {
        id: String,
        #[command(flatten)]
        config: ProviderConfigArgs,
    },
    /// Delete a configuration (refused while live grants use it).
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectSessionsCommand {
    /// Create a session for one end user; send them to its `connect_url`.
    Create {
        #[arg(long)]
        end_user_id: Option<String>,
        /// Where the browser returns afterwards (its origin must be one of the app's).
        #[arg(long, value_name = "URL")]
        return_url: Option<String>,
        /// A provider configuration key or id the user may connect (repeatable) [default: all].
        #[arg(long = "provider", value_name = "KEY")]
        providers: Vec<String>,
        #[arg(long, value_name = "SECONDS")]
        ttl_seconds: Option<u64>,
        #[command(flatten)]
        body: BodyArgs,
    },
    /// Poll a session.
    Get { id: String },
}

#[derive(Debug, Subcommand)]
pub enum WalletSessionsCommand {
    /// Create a wallet session for one end user; send them to its `wallet_url` (it opens once).
    Create {
        #[arg(long)]
        end_user_id: String,
        /// How long the link and the signed-in wallet last (60-3600, default 900).
        #[arg(long, value_name = "SECONDS")]
        ttl_seconds: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// List grants (metadata, never tokens).
    List {
        #[arg(long)]
        end_user_id: Option<String>,
        #[arg(long)]
        provider: Option<String>,
        /// `active`, `needs_reauth`, `revoke_failed` or `revoked`.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    Get {
        id: String,
    },
    /// Print a valid access token for the grant (refreshed first if it is about to expire).
    Token {
        id: String,
    },
    /// Ask the provider whether the grant's token still works.
    Verify {
        id: String,
    },
    /// Revoke the grant at the provider and erase its tokens.
    Disconnect {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum InstallsCommand {
    /// Bind an install started at the provider to an end user.
    Claim {
        #[arg(long)]
        claim: String,
        #[arg(long)]
        end_user_id: String,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct PolicyArgs {
    /// What the policy applies to: `app`, `provider_config`, `grant`, `agent` or `delegation`.
    #[arg(long, value_name = "TYPE")]
    pub target: Option<String>,
    /// The provider configuration, grant, agent or delegation id (not for `app`).
    #[arg(long, value_name = "ID")]
    pub target_id: Option<String>,
    /// An allowed HTTP method for proxied calls (repeatable).
    #[arg(long = "method", value_name = "METHOD")]
    pub methods: Vec<String>,
    /// An allowed upstream path for proxied calls, `*` within a segment, `**` anything (repeatable).
    #[arg(long = "path", value_name = "PATTERN")]
    pub paths: Vec<String>,
    /// An allowed caller IP range (repeatable).
    #[arg(long = "ip-allow", value_name = "CIDR")]
    pub ip_allowlist: Vec<String>,
    /// A token bucket per grant: REQUESTS per SECONDS.
    #[arg(long, value_name = "REQUESTS/SECONDS")]
    pub rate_limit: Option<String>,
    /// The grant stops working this many days after it was connected.
    #[arg(long, value_name = "DAYS")]
    pub max_grant_age_days: Option<u32>,
    /// The raw token never leaves the vault: the grant works only through the proxy.
    #[arg(long)]
    pub no_token_retrieval: bool,
    /// A declared actor type allowed (repeatable).
    #[arg(long = "allow-actor-type", value_name = "TYPE")]
    pub actor_types: Vec<String>,
    /// A declared actor id allowed (repeatable).
    #[arg(long = "allow-actor-id", value_name = "ID")]
    pub actor_ids: Vec<String>,
    /// Hold matching proxied calls for approval (`require_approval`) instead of forwarding them.
    #[arg(long)]
    pub require_approval: bool,
    /// A method that needs approval (repeatable; none: every method). Implies --require-approval.
    #[arg(long = "approval-method", value_name = "METHOD")]
    pub approval_methods: Vec<String>,
    /// A path pattern that needs approval (repeatable; none: every path). Implies --require-approval.
    #[arg(long = "approval-path", value_name = "PATTERN")]
    pub approval_paths: Vec<String>,
    /// Who approves: `operators` (default), `end_user`, `either` or `both`.
    #[arg(long, value_name = "WHO")]
    pub approvers: Option<String>,
    /// Distinct approvals needed (1-10).
    #[arg(long, value_name = "N")]
    pub required_approvals: Option<u32>,
    /// Seconds to decide, and then to execute (60-86400, default 900).
    #[arg(long, value_name = "SECONDS")]
    pub approval_expires_in: Option<u64>,
    // Time windows and anything else: the whole body, e.g.
    // `{"target_type":"app","rules":{"time_windows":[{"start":"08:00","end":"18:00"}]}}`.
    #[command(flatten)]
    pub body: BodyArgs,
}

#[derive(Debug, Subcommand)]
// Parsed once: the size of `Create`'s flags does not matter.
#[allow(clippy::large_enum_variant)]
pub enum PoliciesCommand {
    List,
    Create(PolicyArgs),
    Delete { id: String },
}

/// The fields of a managed secret. Its value is read from `--value-file` or standard input.
#[derive(Debug, Clone, Default, Args)]
pub struct SecretArgs {
    #[arg(long)]
    pub name: Option<String>,
    /// The end user it belongs to (none: the whole app's).
    #[arg(long)]
    pub end_user_id: Option<String>,
    /// `bearer`, `header` (with --header-name), `basic` (with --username) or `query` (with
    /// --query-parameter).
    #[arg(long)]
    pub style: Option<String>,
    #[arg(long)]
    pub header_name: Option<String>,
    #[arg(long)]
    pub query_parameter: Option<String>,
    #[arg(long)]
    pub username: Option<String>,
    /// A base URL the secret may be sent to (repeatable; the first is the default).
    #[arg(long = "base-url", value_name = "URL")]
    pub base_urls: Vec<String>,
    /// File holding the secret value [default: standard input]; one trailing newline is dropped.
    #[arg(long, value_name = "FILE")]
    pub value_file: Option<PathBuf>,
    #[command(flatten)]
    pub body: BodyArgs,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    List,
    Get {
        id: String,
    },
    Create(SecretArgs),
    /// Replace a secret: its settings and its value.
    Replace {
        id: String,
        #[command(flatten)]
        secret: SecretArgs,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List the app's webhook endpoints.
    List,
    /// Register an endpoint; its signing secret is shown once.
    Create {
        /// The endpoint's HTTPS URL.
        #[arg(value_name = "URL")]
        endpoint_url: String,
        /// An event type to receive (repeatable) [default: connected, needs_reauth, revoked].
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
    },
    Delete {
        id: String,
    },
    /// The delivery log.
    Deliveries {
        #[arg(long, value_name = "ID")]
        endpoint_id: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// A new signing secret (shown once); the previous one also signs for the grace period.
    RotateSecret {
        id: String,
        /// How long the previous secret keeps signing too (0-604800, default 86400).
        #[arg(long, value_name = "SECONDS")]
        grace_seconds: Option<u64>,
    },
    /// Send a given-up (or pending) delivery again now.
    Retry {
        delivery_id: String,
    },
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default, Args)]
pub struct AuditFilters {
    #[arg(long)]
    pub grant_id: Option<String>,
    #[arg(long)]
    pub end_user_id: Option<String>,
    #[arg(long)]
    pub provider: Option<String>,
    /// The declared actor id (`x-actor-id`) of the calls.
    #[arg(long)]
    pub actor_id: Option<String>,
    /// e.g. `token.retrieved`, `proxy.request`.
    #[arg(long)]
    pub action: Option<String>,
    #[arg(long)]
    pub outcome: Option<String>,
    /// From this time on (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// One page of events.
    Query {
        #[command(flatten)]
        filters: AuditFilters,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Every matching event on standard output, as JSON lines (default) or CSV.
    Export {
        #[command(flatten)]
        filters: AuditFilters,
        /// `jsonl` or `csv`.
        #[arg(long, value_name = "FORMAT", value_parser = ["jsonl", "csv"])]
        format: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn the_command_tree_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_client_options_go_anywhere() {
        let cli =
            Cli::try_parse_from(["tokenvault", "grants", "list", "--json", "--profile", "p", "--status", "active"])
                .unwrap();
        assert!(cli.remote.json);
        assert_eq!(cli.remote.profile.as_deref(), Some("p"));
        let Command::Grants(GrantsCommand::List { status, .. }) = cli.command else { panic!("grants list") };
        assert_eq!(status.as_deref(), Some("active"));
        let cli = Cli::try_parse_from(["tokenvault", "api-keys", "revoke", "key_1"]).unwrap();
        let Command::ApiKeys(ApiKeysCommand::Revoke { first, key_id }) = cli.command else { panic!("revoke") };
        assert_eq!((first.as_str(), key_id), ("key_1", None));
        assert!(Cli::try_parse_from(["tokenvault", "login", "--url", "http://x"]).is_err(), "a credential is required");
    }
}
