//! Direct database mode: the few commands that work without a running vault, by opening the
//! database as `serve` would (same settings, master key included). `admin-token` (the first
//! credential has to come from somewhere), `keys rotate` (it needs the master key) and `backup`
//! (a file on the database's machine) only exist here; `apps create|list|delete`, `api-keys create|list|revoke APP_ID …` and `keys list` also
//! work here for scripts that predate profiles, used when no vault URL or profile is given, or
//! with `--direct`. Results have the API's JSON shapes, so both modes print the same.

use std::sync::Arc;

use anyhow::bail;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokenvault_service::{CallContext, SystemClock, Vault};

use crate::Settings;
use crate::application::open_vault;
use crate::cli::{ApiKeysCommand, AppsCommand, Command, KeysCommand};
use crate::output::{self, Outcome};

const DEFAULT_PAGE_SIZE: u32 = 50;

/// Whether `command` has a direct mode.
pub fn supports(command: &Command) -> bool {
    matches!(
        command,
        Command::AdminToken { .. }
            | Command::Backup { .. }
            | Command::Keys(_)
            | Command::Apps(AppsCommand::Create { .. } | AppsCommand::List { .. } | AppsCommand::Delete { .. })
            | Command::ApiKeys(_)
    )
}

/// Whether `command` exists only in direct mode.
pub fn only(command: &Command) -> bool {
    matches!(command, Command::AdminToken { .. } | Command::Backup { .. } | Command::Keys(KeysCommand::Rotate))
}

fn to_json(value: &impl serde::Serialize) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(value)?)
}

/// A page in the API's shape: `next_cursor` is the last id when the page is full.
fn page(data: Vec<Value>, limit: Option<u32>) -> Value {
    let next_cursor = match limit {
        Some(limit) if data.len() as u32 >= limit => data.last().map(|last| last["id"].clone()),
        _ => None,
    };
    json!({ "data": data, "next_cursor": next_cursor })
}

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<Outcome> {
    let vault = open_vault(settings, Arc::new(SystemClock)).await?;
    let outcome = run_on(&vault, command).await;
    vault.flush_audit().await;
    outcome
}

async fn run_on(vault: &Vault, command: Command) -> anyhow::Result<Outcome> {
    let context = CallContext::system("cli");
    Ok(match command {
        Command::AdminToken { name } => {
            let minted = vault.mint_admin_token(&name).await?;
            let mut value = to_json(&minted.info)?;
            value["token"] = minted.secret.expose_secret().into();
            let note = format!("admin token {} minted; it is shown only once:", minted.info.id);
            Outcome::Secret { value, field: "token", note }
        }
        Command::Backup { to } => {
            vault.backup_to(&to).await?;
            Outcome::done(format!("database copied to {}; keep the master key apart from it", to.display()))
        }
        Command::Keys(KeysCommand::Rotate) => Outcome::record(to_json(&vault.rotate_keys().await?)?),
        Command::Keys(KeysCommand::List) => {
            Outcome::Page { page: page(to_values(&vault.key_status().await?)?, None), columns: output::KEY_COLUMNS }
        }
        Command::Apps(AppsCommand::Create { name }) => Outcome::record(to_json(&vault.create_app(&name).await?)?),
        Command::Apps(AppsCommand::List { page: p }) => {
            let limit = p.limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, 200);
            let apps = to_values(&vault.list_apps(p.after.as_deref(), limit).await?)?;
            Outcome::Page { page: page(apps, Some(limit)), columns: output::APP_COLUMNS }
        }
        Command::Apps(AppsCommand::Delete { app_id }) => {
            vault.delete_app(&app_id).await?;
            Outcome::done(format!("app {app_id} deleted"))
        }
        Command::ApiKeys(ApiKeysCommand::Create { app_id: Some(app_id), name, key }) => {
            let input = serde_json::from_value(crate::remote::key_body(Some(name), &key)?)?;
            let minted = vault.mint_api_key(&app_id, input, None, &context).await?;
            let mut value = to_json(&minted.info)?;
            value["key"] = minted.secret.expose_secret().into();
            crate::remote::minted_api_key(value)
        }
        Command::ApiKeys(ApiKeysCommand::List { app_id: Some(app_id) }) => {
            let keys = to_values(&vault.list_api_keys(&app_id).await?)?;
            Outcome::Page { page: page(keys, None), columns: output::API_KEY_COLUMNS }
        }
        Command::ApiKeys(ApiKeysCommand::Revoke { first: app_id, key_id: Some(key_id) }) => {
            vault.revoke_api_key(&vault.get_app(&app_id).await?.id, &key_id, &context).await?;
            Outcome::done(format!("api key {key_id} revoked"))
        }
        Command::ApiKeys(
            ApiKeysCommand::List { app_id: None }
            | ApiKeysCommand::Revoke { key_id: None, .. }
            | ApiKeysCommand::Create { app_id: None, .. },
        ) => {
            bail!("without APP_ID this command acts for an API key's own app: it needs --url or a profile")
        }
        _ => bail!("this command needs a running vault: give --url or log in with `tokenvault login`"),
    })
}

fn to_values<T: serde::Serialize>(items: &[T]) -> anyhow::Result<Vec<Value>> {
    items.iter().map(to_json).collect()
}
