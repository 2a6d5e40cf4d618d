//! What each subcommand does.

use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokenvault_service::{CallContext, SystemClock};

use crate::application::open_vault;
use crate::cli::{ApiKeysCommand, AppsCommand, Cli, Command, KeysCommand, ServeArgs};
use crate::{Application, Settings, logging};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let serve_args = match &cli.command {
        Command::Serve(args) => args.clone(),
        _ => ServeArgs::default(),
    };
    let settings = Settings::resolve(&cli.global, &serve_args)?;
    logging::init(settings.log_format);
    match cli.command {
        Command::Serve(_) => serve(&settings).await,
        Command::AdminToken { name } => {
            let vault = open_vault(&settings, Arc::new(SystemClock)).await?;
            let minted = vault.mint_admin_token(&name).await?;
            eprintln!("admin token {} minted; it is shown only once:", minted.info.id);
            println!("{}", minted.secret.expose_secret());
            Ok(())
        }
        Command::Keys(command) => {
            let vault = open_vault(&settings, Arc::new(SystemClock)).await?;
            match command {
                KeysCommand::Rotate => print_json(&vault.rotate_keys().await?),
                KeysCommand::List => print_json(&vault.key_status().await?),
            }
        }
        Command::Apps(command) => {
            let vault = open_vault(&settings, Arc::new(SystemClock)).await?;
            match command {
                AppsCommand::Create { name } => print_json(&vault.create_app(&name).await?),
                AppsCommand::List => print_json(&vault.list_apps(None, 200).await?),
                AppsCommand::Delete { app_id } => {
                    vault.delete_app(&app_id).await?;
                    eprintln!("app {app_id} deleted");
                    Ok(())
                }
            }
        }
        Command::ApiKeys(command) => {
            let vault = open_vault(&settings, Arc::new(SystemClock)).await?;
            match command {
                ApiKeysCommand::Create { app_id, name } => {
                    let minted = vault.mint_api_key(&app_id, &name, &CallContext::system("cli")).await?;
                    vault.flush_audit().await;
                    eprintln!(
                        "api key {} minted for app {}; it is shown only once:",
                        minted.info.id, minted.info.app_id
                    );
                    println!("{}", minted.secret.expose_secret());
                    Ok(())
                }
                ApiKeysCommand::List { app_id } => print_json(&vault.list_api_keys(&app_id).await?),
                ApiKeysCommand::Revoke { app_id, key_id } => {
                    vault
                        .revoke_api_key(&vault.get_app(&app_id).await?.id, &key_id, &CallContext::system("cli"))
                        .await?;
                    vault.flush_audit().await;
                    eprintln!("api key {key_id} revoked");
                    Ok(())
                }
            }
        }
    }
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
    tracing::info!(address = %app.addr(), database = if settings.uses_embedded_database() { "sqlite" } else { "postgres" }, "tokenvault listening");
    eprintln!("tokenvault listening on http://{}", app.addr());
    app.run_until(shutdown_signal()).await.context("server failed")?;
    tracing::info!("tokenvault stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("can install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
