//! What each subcommand does: `serve` runs the server; `login`, `logout`, `profiles` and
//! `completions` stay on this machine; every other command goes to a running vault over its HTTP
//! API (see `remote`), or opens the database directly where that is the only way (see `direct`).

use std::sync::Arc;

use anyhow::{Context, bail};
use clap::CommandFactory;
use secrecy::SecretString;
use serde_json::json;
use tokenvault_service::SystemClock;

use crate::cli::{Cli, Command, GlobalArgs, LoginArgs, RemoteArgs, ServeArgs};
use crate::client::{ApiClient, Auth, Call};
use crate::output::{self, Outcome};
use crate::profiles::{self, DEFAULT_PROFILE, Profile, ProfileFile, Target};
use crate::{Application, Settings, direct, logging, remote};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli { global, remote, command } = cli;
    match command {
        Command::Serve(args) => {
            let settings = Settings::resolve(&global, &args)?;
            logging::init(settings.log_format);
            serve(&settings).await
        }
        Command::Login(args) => login(&remote, args).await,
        Command::Logout => logout(&remote),
        Command::Profiles => output::print(list_profiles(&remote)?, remote.json),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tokenvault", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script).context("cannot write the completion script")
        }
        command => {
            let outcome = match choose_mode(&remote, &command)? {
                Some(target) => {
                    let client = ApiClient::new(target, remote.actor.as_deref(), remote.actor_reason.as_deref())?;
                    remote::run(&client, command).await?
                }
                None => run_direct(&global, command).await?,
            };
            output::print(outcome, remote.json)
        }
    }
}

/// The vault to call, or `None` for direct database mode.
fn choose_mode(remote: &RemoteArgs, command: &Command) -> anyhow::Result<Option<Target>> {
    if direct::only(command) {
        return Ok(None);
    }
    if remote.direct {
        if !direct::supports(command) {
            bail!("this command has no direct mode: it needs a running vault (drop --direct)");
        }
        return Ok(None);
    }
    match profiles::resolve_target(remote)? {
        Some(target) => Ok(Some(target)),
        None if direct::supports(command) => {
            eprintln!(
                "note: no --url and no `default` profile: opening the database directly (see `tokenvault login`)"
            );
            Ok(None)
        }
        None => bail!(
            "no vault to talk to: run `tokenvault login --url URL --admin-token TOKEN` (or `--api-key KEY`), \
             or pass --url with {} or {} set",
            profiles::ADMIN_TOKEN_VAR,
            profiles::API_KEY_VAR
        ),
    }
}

async fn run_direct(global: &GlobalArgs, command: Command) -> anyhow::Result<Outcome> {
    let settings = Settings::resolve(global, &ServeArgs::default())?;
    logging::init(settings.log_format);
    direct::run(&settings, command).await
}

/// A credential given to `login`: the value, or `-` for one line of standard input.
fn login_credential(value: String, what: &str, stdin_used: &mut bool) -> anyhow::Result<SecretString> {
    if value != "-" {
        return profiles::validate_credential(what, &value);
    }
    if std::mem::replace(stdin_used, true) {
        bail!("only one credential can be read from standard input");
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("{what}:");
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).with_context(|| format!("cannot read the {what}"))?;
    profiles::validate_credential(what, &line)
}

async fn login(remote: &RemoteArgs, args: LoginArgs) -> anyhow::Result<()> {
    let url = profiles::parse_vault_url(remote.url.as_deref().context("--url is required: the vault's URL")?)?;
    let name = remote.profile.clone().unwrap_or_else(|| DEFAULT_PROFILE.to_owned());
    profiles::validate_profile_name(&name)?;
    let mut stdin_used = false;
    let admin_token = args.admin_token.map(|v| login_credential(v, "admin token", &mut stdin_used)).transpose()?;
    let api_key = args.api_key.map(|v| login_credential(v, "API key", &mut stdin_used)).transpose()?;
    let local = matches!(url.host(), Some(url::Host::Domain("localhost")))
        || url
            .host_str()
            .and_then(|h| h.trim_matches(['[', ']']).parse::<std::net::IpAddr>().ok())
            .is_some_and(|ip| ip.is_loopback());
    if url.scheme() == "http" && !local {
        eprintln!("warning: {url} is plain http: the credential crosses the network unencrypted");
    }
    if !args.no_verify {
        let target = Target {
            url: url.clone(),
            admin_token: admin_token.clone(),
            api_key: api_key.clone(),
            source: "the login".into(),
        };
        let client = ApiClient::new(target, None, None)?;
        if client.has(Auth::Admin) {
            let check = Call::get(Auth::Admin, "/admin/v1/apps").query("limit", Some(1));
            client.json(check).await.context("the admin token was not accepted; nothing was saved")?;
        }
        if client.has(Auth::App) {
            let app = client
                .json(Call::get(Auth::App, "/v1/app"))
                .await
                .context("the API key was not accepted; nothing was saved")?;
            eprintln!("the API key belongs to app {} ({})", output::cell(&app["name"]), output::cell(&app["id"]));
        }
    }
    let path = profiles::config_path(remote)?;
    let mut file = ProfileFile::load(&path)?;
    let profile = Profile { url: url.to_string(), admin_token, api_key };
    let kinds = profile.credential_kinds().join(" and ");
    file.profiles.insert(name.clone(), profile);
    file.save(&path)?;
    eprintln!("profile `{name}` saved in {}: {url} with {kinds}", path.display());
    Ok(())
}

fn logout(remote: &RemoteArgs) -> anyhow::Result<()> {
    let name = remote.profile.as_deref().unwrap_or(DEFAULT_PROFILE);
    let path = profiles::config_path(remote)?;
    let mut file = ProfileFile::load(&path)?;
    if file.profiles.remove(name).is_none() {
        bail!("no profile `{name}` in {}", path.display());
    }
    file.save(&path)?;
    eprintln!("profile `{name}` removed from {}", path.display());
    Ok(())
}

fn list_profiles(remote: &RemoteArgs) -> anyhow::Result<Outcome> {
    let path = profiles::config_path(remote)?;
    let file = ProfileFile::load(&path)?;
    let in_use = match (&remote.url, &remote.profile) {
        (Some(_), _) => None,
        (None, profile) => Some(profile.as_deref().unwrap_or(DEFAULT_PROFILE)),
    };
    let data: Vec<_> = file
        .profiles
        .iter()
        .map(|(name, p)| {
            json!({ "name": name, "url": p.url, "credentials": p.credential_kinds(), "in_use": in_use == Some(name.as_str()) })
        })
        .collect();
    if data.is_empty() && !remote.json {
        eprintln!("no profiles in {}", path.display());
    }
    Ok(Outcome::Page {
        page: json!({ "file": path.display().to_string(), "data": data, "next_cursor": null }),
        columns: output::PROFILE_COLUMNS,
    })
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let app = Application::build(settings, Arc::new(SystemClock)).await?;
    if settings.egress.allows_private() {
        tracing::warn!(
            "egress guard off (--allow-private-egress): outbound calls may reach loopback, private and link-local addresses"
        );
    } else if !settings.egress.allowed_cidrs().is_empty() {
        let ranges: Vec<String> = settings.egress.allowed_cidrs().iter().map(ToString::to_string).collect();
        tracing::info!(allowed = %ranges.join(","), "egress guard on, with allowed ranges");
    }
    // The handlers are in place before the vault says it listens: a signal sent as soon as the
    // line appears is a graceful stop, not the default action (an abrupt exit).
    let shutdown = shutdown_signal().context("cannot install the signal handlers")?;
    tracing::info!(address = %app.addr(), database = if settings.uses_embedded_database() { "sqlite" } else { "postgres" }, "tokenvault listening");
    eprintln!("tokenvault listening on http://{}", app.addr());
    app.run_until(shutdown).await.context("server failed")?;
    tracing::info!("tokenvault stopped");
    Ok(())
}

/// Installs the SIGTERM and SIGINT handlers now; the future resolves at the first of them.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutdown requested; finishing in-flight requests");
    })
}
