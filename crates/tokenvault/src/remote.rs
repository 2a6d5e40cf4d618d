//! Every operation of the HTTP API as a command: each builds one request (or two, where the API
//! needs a value the user should not have to repeat) and says how its answer is shown. The vault
//! decides everything else, so the CLI cannot drift from the API's rules.
//!
//! Secrets (client secrets, managed-secret values) are read from files or standard input, never
//! from the command line, where shell history and `ps` would keep them.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::cli::{
    AdminTokensCommand, AgentsCommand, ApiKeysCommand, ApprovalsCommand, AppsCommand, AuditCommand, AuditFilters,
    BodyArgs, Command, ConnectSessionsCommand, DelegationsCommand, GrantsCommand, InstallsCommand, KeyArgs,
    KeysCommand, OperatorsCommand, PageArgs, PoliciesCommand, PolicyArgs, ProviderConfigArgs, ProviderConfigsCommand,
    ProvidersCommand, SecretArgs, SecretsCommand, WalletSessionsCommand, WebhooksCommand,
};
use crate::client::{ApiClient, Auth, Call, segment};
use crate::output::{self, Outcome};

/// Runs a command against the vault. `command` is one of the API commands (not `serve`, `login`…).
pub async fn run(client: &ApiClient, command: Command) -> anyhow::Result<Outcome> {
    let mut stdin = Stdin::default();
    match command {
        Command::Apps(command) => apps(client, command).await,
        Command::ApiKeys(command) => api_keys(client, command).await,
        Command::AdminTokens(command) => admin_tokens(client, command).await,
        Command::Operators(OperatorsCommand::List) => {
            page(client, Call::get(Auth::Admin, "/admin/v1/operators"), output::OPERATOR_COLUMNS).await
        }
        Command::Operators(OperatorsCommand::Create { email, role, password_file }) => {
            let file = password_file.unwrap_or_else(|| std::path::PathBuf::from("-"));
            let mut body = Map::new();
            body.insert("email".into(), email.into());
            body.insert("password".into(), stdin.secret_from(&file, "password")?.into());
            set(&mut body, "role", role);
            record(client, Call::new(Auth::Admin, Method::POST, "/admin/v1/operators").body(Value::Object(body))).await
        }
        Command::Keys(KeysCommand::List) => {
            page(client, Call::get(Auth::Admin, "/admin/v1/keys"), output::KEY_COLUMNS).await
        }
        Command::Keys(KeysCommand::Rotate) => bail!("`keys rotate` opens the database directly"),
        Command::Providers(ProvidersCommand::List) => {
            page(client, Call::get(Auth::None, "/v1/providers"), output::PROVIDER_COLUMNS).await
        }
        Command::ProviderConfigs(command) => provider_configs(client, command, &mut stdin).await,
        Command::ConnectSessions(command) => connect_sessions(client, command, &mut stdin).await,
        Command::WalletSessions(command) => wallet_sessions(client, command).await,
        Command::Grants(command) => grants(client, command).await,
        Command::Installs(InstallsCommand::Claim { claim, end_user_id }) => {
            let body = json!({ "claim": claim, "end_user_id": end_user_id });
            let claimed = client.json(Call::new(Auth::App, Method::POST, "/v1/installs/claim").body(body)).await?;
            Ok(Outcome::record(claimed))
        }
        Command::Policies(command) => policies(client, command, &mut stdin).await,
        Command::Agents(command) => agents(client, command).await,
        Command::Delegations(command) => delegations(client, command).await,
        Command::Approvals(command) => approvals(client, command).await,
        Command::Secrets(command) => secrets(client, command, &mut stdin).await,
        Command::Webhooks(command) => webhooks(client, command).await,
        Command::Audit(command) => audit(client, command).await,
        Command::Serve(_)
        | Command::AdminToken { .. }
        | Command::Backup { .. }
        | Command::Login(_)
        | Command::Logout
        | Command::Profiles
        | Command::Completions { .. } => bail!("not an API command"),
    }
}

async fn page(client: &ApiClient, call: Call<'_>, columns: &'static [output::Column]) -> anyhow::Result<Outcome> {
    Ok(Outcome::Page { page: client.json(call).await?, columns })
}

async fn record(client: &ApiClient, call: Call<'_>) -> anyhow::Result<Outcome> {
    Ok(Outcome::record(client.json(call).await?))
}

async fn delete(client: &ApiClient, auth: Auth, path: String, what: String) -> anyhow::Result<Outcome> {
    client.call(Call::new(auth, Method::DELETE, path)).await?;
    Ok(Outcome::done(what))
}

fn paged<'a>(call: Call<'a>, page: &PageArgs) -> Call<'a> {
    call.query("after", page.after.as_deref()).query("limit", page.limit)
}

async fn apps(client: &ApiClient, command: AppsCommand) -> anyhow::Result<Outcome> {
    match command {
        AppsCommand::List { page: p } => {
            page(client, paged(Call::get(Auth::Admin, "/admin/v1/apps"), &p), output::APP_COLUMNS).await
        }
        AppsCommand::Get { app_id: Some(id) } => {
            record(client, Call::get(Auth::Admin, format!("/admin/v1/apps/{}", segment(&id)?))).await
        }
        AppsCommand::Get { app_id: None } => record(client, Call::get(Auth::App, "/v1/app")).await,
        AppsCommand::Create { name } => {
            let call = Call::new(Auth::Admin, Method::POST, "/admin/v1/apps").body(json!({ "name": name }));
            record(client, call).await
        }
        AppsCommand::Update {
            app_id,
            name,
            return_origins,
            install_return_url,
            no_install_return_url,
            branding,
            body,
        } => {
            let mut update = body_object(&body, &[], &mut Stdin::default())?;
            set(&mut update, "name", name);
            set_list(&mut update, "return_origins", return_origins);
            set(&mut update, "install_return_url", install_return_url);
            if no_install_return_url {
                update.insert("install_return_url".into(), Value::Null);
            }
            let mut shown = Map::new();
            for (field, value) in [
                ("display_name", branding.display_name),
                ("logo_url", branding.logo_url),
                ("accent_color", branding.accent_color),
                ("support_url", branding.support_url),
            ] {
                if let Some(value) = value {
                    shown.insert(field.into(), if value.is_empty() { Value::Null } else { Value::String(value) });
                }
            }
            if !shown.is_empty() {
                update.insert("branding".into(), Value::Object(shown));
            }
            let call = match app_id {
                Some(id) => Call::new(Auth::Admin, Method::PATCH, format!("/admin/v1/apps/{}", segment(&id)?)),
                None => Call::new(Auth::App, Method::PATCH, "/v1/app"),
            };
            record(client, call.body(Value::Object(update))).await
        }
        AppsCommand::Delete { app_id } => {
            let path = format!("/admin/v1/apps/{}", segment(&app_id)?);
            delete(client, Auth::Admin, path, format!("app {app_id} deleted")).await
        }
    }
}

async fn api_keys(client: &ApiClient, command: ApiKeysCommand) -> anyhow::Result<Outcome> {
    match command {
        ApiKeysCommand::Create { app_id: Some(app_id), name, key } => {
            let path = format!("/admin/v1/apps/{}/api-keys", segment(&app_id)?);
            minted(client, Call::new(Auth::Admin, Method::POST, path).body(key_body(Some(name), &key)?)).await
        }
        ApiKeysCommand::Create { app_id: None, name, key } => {
            minted(client, Call::new(Auth::App, Method::POST, "/v1/api-keys").body(key_body(Some(name), &key)?)).await
        }
        ApiKeysCommand::Rotate { first, key_id, grace_seconds } => {
            let (auth, path) = match key_id {
                Some(key_id) => {
                    (Auth::Admin, format!("/admin/v1/apps/{}/api-keys/{}/rotate", segment(&first)?, segment(&key_id)?))
                }
                None => (Auth::App, format!("/v1/api-keys/{}/rotate", segment(&first)?)),
            };
            let mut body = Map::new();
            set(&mut body, "grace_seconds", grace_seconds);
            minted(client, Call::new(auth, Method::POST, path).body(Value::Object(body))).await
        }
        ApiKeysCommand::Derive { name, key } => {
            minted(client, Call::new(Auth::App, Method::POST, "/v1/api-keys/derive").body(key_body(name, &key)?)).await
        }
        ApiKeysCommand::List { app_id: Some(app_id) } => {
            let path = format!("/admin/v1/apps/{}/api-keys", segment(&app_id)?);
            page(client, Call::get(Auth::Admin, path), output::API_KEY_COLUMNS).await
        }
        ApiKeysCommand::List { app_id: None } => {
            page(client, Call::get(Auth::App, "/v1/api-keys"), output::API_KEY_COLUMNS).await
        }
        ApiKeysCommand::Revoke { first: app_id, key_id: Some(key_id) } => {
            let path = format!("/admin/v1/apps/{}/api-keys/{}", segment(&app_id)?, segment(&key_id)?);
            delete(client, Auth::Admin, path, format!("api key {key_id} revoked")).await
        }
        ApiKeysCommand::Revoke { first: key_id, key_id: None } => {
            let path = format!("/v1/api-keys/{}", segment(&key_id)?);
            delete(client, Auth::App, path, format!("api key {key_id} revoked")).await
        }
    }
}

async fn minted(client: &ApiClient, call: Call<'_>) -> anyhow::Result<Outcome> {
    Ok(minted_api_key(client.json(call).await?))
}

/// The JSON body of a new key from the command line's flags (the API checks everything).
pub fn key_body(name: Option<String>, key: &KeyArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    set(&mut body, "name", name);
    if key.full_access {
        body.insert("scopes".into(), json!(["*"]));
    } else {
        set_list(&mut body, "scopes", key.scopes.clone());
    }
    set(&mut body, "expires_in", key.expires_in);
    set_list(&mut body, "allowed_cidrs", key.allowed_cidrs.clone());
    if let Some(limit) = &key.rate_limit {
        let (requests, seconds) = limit
            .split_once('/')
            .and_then(|(r, s)| Some((r.trim().parse::<u32>().ok()?, s.trim().parse::<u32>().ok()?)))
            .context("--rate-limit is REQUESTS/SECONDS, e.g. 100/60")?;
        body.insert("rate_limit".into(), json!({ "requests": requests, "per_seconds": seconds }));
    }
    Ok(Value::Object(body))
}

async fn agents(client: &ApiClient, command: AgentsCommand) -> anyhow::Result<Outcome> {
    let agent_path = |id: &str| -> anyhow::Result<String> { Ok(format!("/v1/agents/{}", segment(id)?)) };
    match command {
        AgentsCommand::Create { name, description } => {
            let mut body = Map::new();
            body.insert("name".into(), name.into());
            set(&mut body, "description", description);
            record(client, Call::new(Auth::App, Method::POST, "/v1/agents").body(Value::Object(body))).await
        }
        AgentsCommand::List => page(client, Call::get(Auth::App, "/v1/agents"), output::AGENT_COLUMNS).await,
        AgentsCommand::Get { agent_id } => record(client, Call::get(Auth::App, agent_path(&agent_id)?)).await,
        AgentsCommand::Suspend { agent_id } => {
            let call =
                Call::new(Auth::App, Method::PATCH, agent_path(&agent_id)?).body(json!({ "status": "suspended" }));
            record(client, call).await
        }
        AgentsCommand::Activate { agent_id } => {
            let call = Call::new(Auth::App, Method::PATCH, agent_path(&agent_id)?).body(json!({ "status": "active" }));
            record(client, call).await
        }
        AgentsCommand::Revoke { agent_id } => {
            delete(client, Auth::App, agent_path(&agent_id)?, format!("agent {agent_id} revoked")).await
        }
        AgentsCommand::Key { agent_id, name, key } => {
            let path = format!("{}/keys", agent_path(&agent_id)?);
            minted(client, Call::new(Auth::App, Method::POST, path).body(key_body(Some(name), &key)?)).await
        }
    }
}

async fn delegations(client: &ApiClient, command: DelegationsCommand) -> anyhow::Result<Outcome> {
    match command {
        DelegationsCommand::Create { agent_id, grant_id, methods, paths, allow_token_retrieval, expires_in } => {
            let mut body = Map::new();
            body.insert("grant_id".into(), grant_id.into());
            set_list(&mut body, "methods", methods);
            set_list(&mut body, "paths", paths);
            if allow_token_retrieval {
                body.insert("proxy_only".into(), false.into());
            }
            set(&mut body, "expires_in", expires_in);
            let path = format!("/v1/agents/{}/delegations", segment(&agent_id)?);
            record(client, Call::new(Auth::App, Method::POST, path).body(Value::Object(body))).await
        }
        DelegationsCommand::List { agent_id } => {
            let path = format!("/v1/agents/{}/delegations", segment(&agent_id)?);
            page(client, Call::get(Auth::App, path), output::DELEGATION_COLUMNS).await
        }
        DelegationsCommand::Get { id } => {
            record(client, Call::get(Auth::App, format!("/v1/delegations/{}", segment(&id)?))).await
        }
        DelegationsCommand::Revoke { id } => {
            let path = format!("/v1/delegations/{}", segment(&id)?);
            delete(client, Auth::App, path, format!("delegation {id} revoked")).await
        }
    }
}

async fn approvals(client: &ApiClient, command: ApprovalsCommand) -> anyhow::Result<Outcome> {
    let at = |id: &str, tail: &str| -> anyhow::Result<String> { Ok(format!("/v1/approvals/{}{tail}", segment(id)?)) };
    let decision = |comment: Option<String>, for_end_user: bool| {
        let mut body = Map::new();
        set(&mut body, "comment", comment);
        if for_end_user {
            body.insert("on_behalf_of".into(), "end_user".into());
        }
        Value::Object(body)
    };
    match command {
        ApprovalsCommand::List { status, grant_id, before, limit } => {
            let call = Call::get(Auth::App, "/v1/approvals")
                .query("status", status)
                .query("grant_id", grant_id)
                .query("before", before)
                .query("limit", limit);
            page(client, call, output::APPROVAL_COLUMNS).await
        }
        ApprovalsCommand::Get { id, wait } => {
            record(client, Call::get(Auth::App, at(&id, "")?).query("wait", wait)).await
        }
        ApprovalsCommand::Approve { id, comment, for_end_user } => {
            let call = Call::new(Auth::App, Method::POST, at(&id, "/approve")?).body(decision(comment, for_end_user));
            record(client, call).await
        }
        ApprovalsCommand::Deny { id, comment, for_end_user } => {
            let call = Call::new(Auth::App, Method::POST, at(&id, "/deny")?).body(decision(comment, for_end_user));
            record(client, call).await
        }
        ApprovalsCommand::Link { id, approver } => {
            let mut body = Map::new();
            set(&mut body, "approver", approver);
            let link =
                client.json(Call::new(Auth::App, Method::POST, at(&id, "/links")?).body(Value::Object(body))).await?;
            let note =
                format!("a one-use approval link for the {}; it is shown only once:", output::cell(&link["approver"]));
            Ok(Outcome::Secret { value: link, field: "url", note })
        }
        ApprovalsCommand::Execute { id } => {
            answer(client, Call::new(Auth::App, Method::POST, at(&id, "/execute")?)).await
        }
        ApprovalsCommand::Result { id } => answer(client, Call::get(Auth::App, at(&id, "/result")?)).await,
    }
}

/// A provider's answer relayed by the vault: its status on stderr, its body as is on stdout.
async fn answer(client: &ApiClient, call: Call<'_>) -> anyhow::Result<Outcome> {
    use std::io::Write;
    let response = client.send(call).await?;
    eprintln!("provider answered {}", response.status().as_u16());
    let body = response
        .bytes()
        .await
        .map_err(|err| crate::client::Failure::Unavailable(format!("the answer was cut off: {}", err.without_url())))?;
    let mut out = std::io::stdout().lock();
    out.write_all(&body)?;
    if !body.ends_with(b"\n") && !body.is_empty() {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(Outcome::Written)
}

/// The answer of minting an API key, as the API and the direct mode both give it.
pub fn minted_api_key(minted: Value) -> Outcome {
    let note = format!(
        "api key {} minted for app {}; it is shown only once:",
        output::cell(&minted["id"]),
        output::cell(&minted["app_id"])
    );
    Outcome::Secret { value: minted, field: "key", note }
}

async fn admin_tokens(client: &ApiClient, command: AdminTokensCommand) -> anyhow::Result<Outcome> {
    match command {
        AdminTokensCommand::List => {
            page(client, Call::get(Auth::Admin, "/admin/v1/admin-tokens"), output::ADMIN_TOKEN_COLUMNS).await
        }
        AdminTokensCommand::Create { name } => {
            let mut body = Map::new();
            set(&mut body, "name", name);
            let call = Call::new(Auth::Admin, Method::POST, "/admin/v1/admin-tokens").body(Value::Object(body));
            let minted = client.json(call).await?;
            let note = format!("admin token {} minted; it is shown only once:", output::cell(&minted["id"]));
            Ok(Outcome::Secret { value: minted, field: "token", note })
        }
        AdminTokensCommand::Revoke { id } => {
            let path = format!("/admin/v1/admin-tokens/{}", segment(&id)?);
            delete(client, Auth::Admin, path, format!("admin token {id} revoked")).await
        }
    }
}

const PROVIDER_CONFIG_SECRETS: &[&str] = &["client_secret", "webhook_secret"];

async fn provider_configs(
    client: &ApiClient,
    command: ProviderConfigsCommand,
    stdin: &mut Stdin,
) -> anyhow::Result<Outcome> {
    match command {
        ProviderConfigsCommand::List => {
            page(client, Call::get(Auth::App, "/v1/provider-configs"), output::PROVIDER_CONFIG_COLUMNS).await
        }
        ProviderConfigsCommand::Get { id } => {
            record(client, Call::get(Auth::App, format!("/v1/provider-configs/{}", segment(&id)?))).await
        }
        ProviderConfigsCommand::Create(args) => {
            let body = provider_config_body(args, stdin)?;
            record(client, Call::new(Auth::App, Method::POST, "/v1/provider-configs").body(body)).await
        }
        ProviderConfigsCommand::Update { id, config } => {
            let path = format!("/v1/provider-configs/{}", segment(&id)?);
            let mut body = provider_config_body(config, stdin)?;
            // `provider` cannot change but must be sent: take the current one when not given.
            if body.get("provider").is_none() {
                let current = client.json(Call::get(Auth::App, path.clone())).await?;
                body["provider"] = current["provider"].clone();
            }
            record(client, Call::new(Auth::App, Method::PUT, path).body(body)).await
        }
        ProviderConfigsCommand::Delete { id } => {
            let path = format!("/v1/provider-configs/{}", segment(&id)?);
            delete(client, Auth::App, path, format!("provider configuration {id} deleted")).await
        }
    }
}

fn provider_config_body(args: ProviderConfigArgs, stdin: &mut Stdin) -> anyhow::Result<Value> {
    let mut body = body_object(&args.body, PROVIDER_CONFIG_SECRETS, stdin)?;
    set(&mut body, "provider", args.provider);
    set(&mut body, "key", args.key);
    set(&mut body, "environment", args.environment);
    set(&mut body, "client_id", args.client_id);
    set_list(&mut body, "scopes", args.scopes);
    set(&mut body, "issuer", args.issuer);
    set(&mut body, "api_base_url", args.api_base_url);
    set(&mut body, "redirect_query", args.redirect_query);
    if let Some(file) = &args.client_secret_file {
        body.insert("client_secret".into(), stdin.secret_from(file, "client secret")?.into());
    }
    if let Some(file) = &args.webhook_secret_file {
        body.insert("webhook_secret".into(), stdin.secret_from(file, "webhook secret")?.into());
    }
    if !body.contains_key("client_secret") {
        bail!("the client secret is required: --client-secret-file FILE (`-` reads standard input)");
    }
    Ok(Value::Object(body))
}

async fn connect_sessions(
    client: &ApiClient,
    command: ConnectSessionsCommand,
    stdin: &mut Stdin,
) -> anyhow::Result<Outcome> {
    match command {
        ConnectSessionsCommand::Create { end_user_id, return_url, providers, ttl_seconds, body } => {
            let mut body = body_object(&body, &[], stdin)?;
            set(&mut body, "end_user_id", end_user_id);
            set(&mut body, "return_url", return_url);
            set_list(&mut body, "providers", providers);
            set(&mut body, "ttl_seconds", ttl_seconds);
            for required in ["end_user_id", "return_url"] {
                if !body.contains_key(required) {
                    bail!("--{} is required", required.replace('_', "-"));
                }
            }
            let call = Call::new(Auth::App, Method::POST, "/v1/connect-sessions").body(Value::Object(body));
            let created = client.json(call).await?;
            let note = Some("send the end user to `connect_url`; the session's token is shown only once".to_owned());
            Ok(Outcome::Record { value: created, note })
        }
        ConnectSessionsCommand::Get { id } => {
            record(client, Call::get(Auth::App, format!("/v1/connect-sessions/{}", segment(&id)?))).await
        }
    }
}

async fn wallet_sessions(client: &ApiClient, command: WalletSessionsCommand) -> anyhow::Result<Outcome> {
    match command {
        WalletSessionsCommand::Create { end_user_id, ttl_seconds } => {
            let mut body = Map::new();
            body.insert("end_user_id".into(), end_user_id.into());
            set(&mut body, "ttl_seconds", ttl_seconds);
            let call = Call::new(Auth::App, Method::POST, "/v1/wallet-sessions").body(Value::Object(body));
            let created = client.json(call).await?;
            let note = Some("send the end user to `wallet_url`; it opens once and is shown only now".to_owned());
            Ok(Outcome::Record { value: created, note })
        }
    }
}

async fn grants(client: &ApiClient, command: GrantsCommand) -> anyhow::Result<Outcome> {
    match command {
        GrantsCommand::List { end_user_id, provider, status, page: p } => {
            let call = Call::get(Auth::App, "/v1/grants")
                .query("end_user_id", end_user_id)
                .query("provider", provider)
                .query("status", status);
            page(client, paged(call, &p), output::GRANT_COLUMNS).await
        }
        GrantsCommand::Get { id } => {
            record(client, Call::get(Auth::App, format!("/v1/grants/{}", segment(&id)?))).await
        }
        GrantsCommand::Token { id } => {
            let path = format!("/v1/grants/{}/token", segment(&id)?);
            let token = client.json(Call::new(Auth::App, Method::POST, path)).await?;
            let note = format!("access token for grant {id}, expires at {}:", output::cell(&token["expires_at"]));
            Ok(Outcome::Secret { value: token, field: "access_token", note })
        }
        GrantsCommand::Verify { id } => {
            record(client, Call::new(Auth::App, Method::POST, format!("/v1/grants/{}/verify", segment(&id)?))).await
        }
        GrantsCommand::Disconnect { id } => {
            let path = format!("/v1/grants/{}", segment(&id)?);
            let grant = client.json(Call::new(Auth::App, Method::DELETE, path)).await?;
            Ok(Outcome::Record { value: grant, note: Some(format!("grant {id} disconnected")) })
        }
    }
}

async fn policies(client: &ApiClient, command: PoliciesCommand, stdin: &mut Stdin) -> anyhow::Result<Outcome> {
    match command {
        PoliciesCommand::List => page(client, Call::get(Auth::App, "/v1/policies"), output::POLICY_COLUMNS).await,
        PoliciesCommand::Create(args) => {
            let body = policy_body(args, stdin)?;
            record(client, Call::new(Auth::App, Method::POST, "/v1/policies").body(body)).await
        }
        PoliciesCommand::Delete { id } => {
            let path = format!("/v1/policies/{}", segment(&id)?);
            delete(client, Auth::App, path, format!("policy {id} deleted")).await
        }
    }
}

fn policy_body(args: PolicyArgs, stdin: &mut Stdin) -> anyhow::Result<Value> {
    let mut body = body_object(&args.body, &[], stdin)?;
    set(&mut body, "target_type", args.target);
    set(&mut body, "target_id", args.target_id);
    if !body.contains_key("target_type") {
        bail!("--target is required: app, provider_config, grant, agent or delegation");
    }
    let rules = body.entry("rules").or_insert_with(|| json!({}));
    let rules = rules.as_object_mut().context("`rules` in the body must be an object")?;
    set_list(rules, "methods", args.methods);
    set_list(rules, "paths", args.paths);
    set_list(rules, "ip_allowlist", args.ip_allowlist);
    set_list(rules, "actor_types", args.actor_types);
    set_list(rules, "actor_ids", args.actor_ids);
    set(rules, "max_grant_age_days", args.max_grant_age_days);
    let approval_wanted = args.require_approval
        || !args.approval_methods.is_empty()
        || !args.approval_paths.is_empty()
        || args.approvers.is_some()
        || args.required_approvals.is_some()
        || args.approval_expires_in.is_some();
    if approval_wanted {
        let mut rule = Map::new();
        set_list(&mut rule, "methods", args.approval_methods);
        set_list(&mut rule, "paths", args.approval_paths);
        set(&mut rule, "approvers", args.approvers);
        set(&mut rule, "required_approvals", args.required_approvals);
        set(&mut rule, "expires_in", args.approval_expires_in);
        rules.insert("require_approval".into(), Value::Object(rule));
    }
    if args.no_token_retrieval {
        rules.insert("token_retrieval".into(), false.into());
    }
    if let Some(limit) = args.rate_limit {
        let parsed = limit
            .split_once('/')
            .and_then(|(n, s)| Some((n.trim().parse::<u32>().ok()?, s.trim().parse::<u32>().ok()?)));
        let Some((requests, per_seconds)) = parsed else {
            bail!("--rate-limit is REQUESTS/SECONDS, e.g. 100/60");
        };
        rules.insert("rate_limit".into(), json!({ "requests": requests, "per_seconds": per_seconds }));
    }
    Ok(Value::Object(body))
}

async fn secrets(client: &ApiClient, command: SecretsCommand, stdin: &mut Stdin) -> anyhow::Result<Outcome> {
    match command {
        SecretsCommand::List => page(client, Call::get(Auth::App, "/v1/managed-secrets"), output::SECRET_COLUMNS).await,
        SecretsCommand::Get { id } => {
            record(client, Call::get(Auth::App, format!("/v1/managed-secrets/{}", segment(&id)?))).await
        }
        SecretsCommand::Create(args) => {
            let body = secret_body(args, stdin)?;
            record(client, Call::new(Auth::App, Method::POST, "/v1/managed-secrets").body(body)).await
        }
        SecretsCommand::Replace { id, secret } => {
            let path = format!("/v1/managed-secrets/{}", segment(&id)?);
            let body = secret_body(secret, stdin)?;
            record(client, Call::new(Auth::App, Method::PUT, path).body(body)).await
        }
        SecretsCommand::Delete { id } => {
            let path = format!("/v1/managed-secrets/{}", segment(&id)?);
            delete(client, Auth::App, path, format!("managed secret {id} deleted")).await
        }
    }
}

fn secret_body(args: SecretArgs, stdin: &mut Stdin) -> anyhow::Result<Value> {
    let mut body = body_object(&args.body, &["secret"], stdin)?;
    set(&mut body, "name", args.name);
    set(&mut body, "end_user_id", args.end_user_id);
    set(&mut body, "style", args.style);
    set(&mut body, "header_name", args.header_name);
    set(&mut body, "query_parameter", args.query_parameter);
    set(&mut body, "username", args.username);
    set_list(&mut body, "base_urls", args.base_urls);
    let from_file = args.value_file.is_some();
    if from_file || !body.contains_key("secret") {
        let file = args.value_file.unwrap_or_else(|| PathBuf::from("-"));
        body.insert("secret".into(), stdin.secret_from(&file, "secret value")?.into());
    }
    Ok(Value::Object(body))
}

async fn webhooks(client: &ApiClient, command: WebhooksCommand) -> anyhow::Result<Outcome> {
    match command {
        WebhooksCommand::List => {
            page(client, Call::get(Auth::App, "/v1/webhook-endpoints"), output::WEBHOOK_COLUMNS).await
        }
        WebhooksCommand::Create { endpoint_url, events } => {
            let mut body = Map::new();
            body.insert("url".into(), endpoint_url.into());
            set_list(&mut body, "events", events);
            let call = Call::new(Auth::App, Method::POST, "/v1/webhook-endpoints").body(Value::Object(body));
            let created = client.json(call).await?;
            let note = Some("the signing `secret` is shown only once".to_owned());
            Ok(Outcome::Record { value: created, note })
        }
        WebhooksCommand::Delete { id } => {
            let path = format!("/v1/webhook-endpoints/{}", segment(&id)?);
            delete(client, Auth::App, path, format!("webhook endpoint {id} deleted")).await
        }
        WebhooksCommand::RotateSecret { id, grace_seconds } => {
            let mut body = Map::new();
            set(&mut body, "grace_seconds", grace_seconds);
            let path = format!("/v1/webhook-endpoints/{}/rotate-secret", segment(&id)?);
            let rotated = client.json(Call::new(Auth::App, Method::POST, path).body(Value::Object(body))).await?;
            let note = Some("the new signing secret is shown only once".to_owned());
            Ok(Outcome::Record { value: rotated, note })
        }
        WebhooksCommand::Retry { delivery_id } => {
            let path = format!("/v1/webhook-deliveries/{}/retry", segment(&delivery_id)?);
            record(client, Call::new(Auth::App, Method::POST, path)).await
        }
        WebhooksCommand::Deliveries { endpoint_id, page: p } => {
            let call = Call::get(Auth::App, "/v1/webhook-deliveries").query("endpoint_id", endpoint_id);
            page(client, paged(call, &p), output::DELIVERY_COLUMNS).await
        }
    }
}

fn audit_query<'a>(call: Call<'a>, filters: AuditFilters) -> Call<'a> {
    call.query("grant_id", filters.grant_id)
        .query("end_user_id", filters.end_user_id)
        .query("provider", filters.provider)
        .query("actor_id", filters.actor_id)
        .query("action", filters.action)
        .query("outcome", filters.outcome)
        .query("from", filters.from)
        .query("to", filters.to)
}

async fn audit(client: &ApiClient, command: AuditCommand) -> anyhow::Result<Outcome> {
    match command {
        AuditCommand::Query { filters, page: p } => {
            let call = paged(audit_query(Call::get(Auth::App, "/v1/audit"), filters), &p);
            page(client, call, output::AUDIT_COLUMNS).await
        }
        AuditCommand::Export { filters, format } => {
            use futures_util::StreamExt;
            use std::io::Write;
            let call = audit_query(Call::get(Auth::App, "/v1/audit/export"), filters).query("format", format);
            let response = client.send(call).await?;
            let mut stream = response.bytes_stream();
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|err| {
                    crate::client::Failure::Unavailable(format!("the export was cut off: {}", err.without_url()))
                })?;
                out.write_all(&chunk)?;
            }
            out.flush()?;
            Ok(Outcome::Written)
        }
    }
}

/// Standard input can be read once: by one secret or one body.
#[derive(Default)]
pub struct Stdin {
    used_for: Option<&'static str>,
}

impl Stdin {
    fn take(&mut self, what: &'static str) -> anyhow::Result<String> {
        if let Some(earlier) = self.used_for.replace(what) {
            bail!(
                "standard input can give only one value, and the {earlier} already reads it: use a file for the {what}"
            );
        }
        let mut stdin = std::io::stdin();
        if std::io::IsTerminal::is_terminal(&stdin) {
            eprintln!("reading the {what} from standard input (end with Ctrl-D):");
        }
        let mut text = String::new();
        stdin.read_to_string(&mut text).with_context(|| format!("cannot read the {what} from standard input"))?;
        Ok(text)
    }

    fn read(&mut self, file: &Path, what: &'static str) -> anyhow::Result<String> {
        if file == Path::new("-") {
            return self.take(what);
        }
        std::fs::read_to_string(file).with_context(|| format!("cannot read the {what} from {}", file.display()))
    }

    /// A secret from a file or `-` (standard input), without its one trailing newline.
    fn secret_from(&mut self, file: &Path, what: &'static str) -> anyhow::Result<String> {
        let text = self.read(file, what)?;
        let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
        if value.is_empty() {
            bail!("the {what} is empty");
        }
        Ok(value.to_owned())
    }
}

/// The object given with `--body` / `--body-file`, or an empty one. Secret fields are refused in
/// `--body`, which is on the command line.
fn body_object(args: &BodyArgs, secret_fields: &[&str], stdin: &mut Stdin) -> anyhow::Result<Map<String, Value>> {
    let (text, from_argv) = match (&args.body, &args.body_file) {
        (Some(text), _) => (text.clone(), true),
        (None, Some(file)) => (stdin.read(file, "request body")?, false),
        (None, None) => return Ok(Map::new()),
    };
    // serde_json's messages name a position, never the text.
    let value: Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("the request body is not JSON: {e}"))?;
    let Value::Object(object) = value else {
        bail!("the request body must be a JSON object");
    };
    if from_argv && let Some(field) = secret_fields.iter().find(|f| object.contains_key(**f)) {
        bail!("`{field}` must not be given on the command line: use --body-file or the command's secret file option");
    }
    Ok(object)
}

fn set(body: &mut Map<String, Value>, name: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        body.insert(name.to_owned(), value.into());
    }
}

fn set_list(body: &mut Map<String, Value>, name: &str, values: Vec<String>) {
    if !values.is_empty() {
        body.insert(name.to_owned(), values.into());
    }
}
