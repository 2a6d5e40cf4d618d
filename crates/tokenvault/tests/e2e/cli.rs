//! Issue 9: the `tokenvault` binary as a client of a running vault. Each test starts the real
//! server, logs in with a profile file of its own, then drives the real binary through every
//! command group and checks what a user sees: tables, `--json` that parses, the error line and
//! exit code, and that the profile's credentials never appear in any output.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokenvault_fakes::{ClientRegistration, Provider};
use tokio::io::AsyncWriteExt;

use crate::connect_env::{ConnectEnv, RETURN_URL, query_of};
use crate::connect_tests;
use crate::support::ADMIN_TOKEN;

connect_tests!(
    login_writes_a_private_profile_and_the_admin_commands_work,
    errors_are_one_line_with_distinct_exit_codes_and_completions_are_printed,
    the_app_commands_cover_connect_grants_policies_secrets_webhooks_and_audit,
    the_key_agent_and_delegation_commands_work,
    the_approval_commands_hold_decide_and_execute,
);

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The binary with a private CLI config file; remembers every credential it must never print.
struct Cli {
    config: PathBuf,
    dir: tempfile::TempDir,
    never_shown: Vec<String>,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        Cli { config: dir.path().join("config").join("cli.toml"), dir, never_shown: Vec::new() }
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Runs the binary (asynchronously: the server runs on this test's runtime).
    async fn run_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut command = crate::process::tokenvault();
        command.env("TOKENVAULT_CLI_CONFIG", &self.config).args(args).envs(env.iter().copied());
        let mut command = tokio::process::Command::from(command);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let output = child.wait_with_output().await.unwrap();
        let output = Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        for secret in &self.never_shown {
            assert!(
                !output.stdout.contains(secret.as_str()) && !output.stderr.contains(secret.as_str()),
                "a credential was printed by {args:?}"
            );
        }
        output
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None, &[]).await
    }

    /// Runs, expecting success; returns stdout.
    async fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.run_with(args, stdin, &[]).await;
        assert_eq!(output.code, 0, "{args:?} failed: {}", output.stderr);
        output.stdout
    }

    async fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None).await
    }

    /// Runs with `--json`, expecting success; returns the parsed output.
    async fn json_with(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let stdout = self.ok_with(&args, stdin).await;
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout}"))
    }

    async fn json(&self, args: &[&str]) -> Value {
        self.json_with(args, None).await
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|item| item["id"].as_str().unwrap().to_owned()).collect()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn login_writes_a_private_profile_and_the_admin_commands_work(env: ConnectEnv) {
    let vault = &env.vault;
    let (_, app_key) = vault.new_app("seed").await;
    let mut cli = Cli::new();
    cli.never_shown = vec![ADMIN_TOKEN.to_owned(), app_key.clone()];

    let output = cli.run(&["login", "--url", &vault.base, "--admin-token", ADMIN_TOKEN]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stderr.contains("profile `default` saved"), "{}", output.stderr);
    assert_eq!(mode_of(&cli.config), 0o600, "the profile file is private");
    assert_eq!(mode_of(cli.config.parent().unwrap()), 0o700, "so is the directory it created");
    let text = std::fs::read_to_string(&cli.config).unwrap();
    assert!(text.contains("[profiles.default]") && text.contains(&vault.base), "{text}");
    // A second profile, the credential read from standard input (never on the command line).
    let output = cli
        .run_with(
            &["login", "--profile", "seed", "--url", &vault.base, "--api-key", "-"],
            Some(&format!("{app_key}\n")),
            &[],
        )
        .await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stderr.contains("app seed"), "{}", output.stderr);
    assert_eq!(mode_of(&cli.config), 0o600);

    let profiles = cli.ok(&["profiles"]).await;
    assert!(profiles.starts_with("NAME"), "{profiles}");
    assert!(
        profiles.contains("default") && profiles.contains("seed") && profiles.contains("admin token"),
        "{profiles}"
    );
    let profiles = cli.json(&["profiles"]).await;
    assert_eq!(profiles["data"].as_array().unwrap().len(), 2, "{profiles}");
    assert_eq!(profiles["data"][0]["in_use"], true, "{profiles}");

    // Apps.
    let app = cli.json(&["apps", "create", "acme"]).await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    assert_eq!(app["name"], "acme");
    let table = cli.ok(&["apps", "list"]).await;
    assert!(table.lines().next().unwrap().starts_with("ID") && table.contains(&app_id), "{table}");
    assert_eq!(ids(&cli.json(&["apps", "list", "--limit", "1"]).await).len(), 1);
    assert_eq!(cli.json(&["apps", "get", &app_id]).await["name"], "acme");
    let updated = cli
        .json(&["apps", "update", &app_id, "--name", "acme-renamed", "--return-origin", "https://app.example.com"])
        .await;
    assert_eq!(updated["name"], "acme-renamed");
    assert_eq!(updated["return_origins"][0], "https://app.example.com");
    let fields = cli.ok(&["apps", "get", &app_id]).await;
    assert!(fields.starts_with("id ") && fields.contains("acme-renamed"), "{fields}");
    // The API key's own app, through the other profile.
    assert_eq!(cli.json(&["apps", "get", "--profile", "seed"]).await["name"], "seed");

    // API keys: minted (shown once, alone on stdout), listed without secrets, revoked at once.
    let key = cli.ok(&["api-keys", "create", &app_id, "--name", "backend", "--full-access"]).await.trim().to_owned();
    assert!(key.starts_with("tvk_"), "{key}");
    let (status, _) = vault.call(Method::GET, "/v1/app", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = cli.ok(&["api-keys", "list", &app_id, "--json"]).await;
    assert!(!listed.contains(&key), "a listing never shows a secret");
    let key_id = ids(&serde_json::from_str(&listed).unwrap())[0].clone();
    let own = cli.json(&["api-keys", "list", "--profile", "seed"]).await;
    assert_eq!(own["data"].as_array().unwrap().len(), 1, "{own}");
    cli.ok(&["api-keys", "revoke", &app_id, &key_id]).await;
    let (status, _) = vault.call(Method::GET, "/v1/app", Some(&key), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked from the CLI, refused at once");

    // Admin tokens: minted, listed without secrets, revoked: refused on the next call.
    let minted = cli.json(&["admin-tokens", "create", "--name", "laptop"]).await;
    let token = minted["token"].as_str().unwrap().to_owned();
    let token_id = minted["id"].as_str().unwrap().to_owned();
    let listed = cli.ok(&["admin-tokens", "list"]).await;
    assert!(listed.contains(&token_id) && listed.contains("laptop") && !listed.contains(&token), "{listed}");
    let listed = cli.json(&["admin-tokens", "list"]).await;
    assert_eq!(ids(&listed), [token_id.as_str()]);
    let with_token = [("TOKENVAULT_ADMIN_TOKEN", token.as_str())];
    let output = cli.run_with(&["apps", "list", "--url", &vault.base], None, &with_token).await;
    assert_eq!(output.code, 0, "the minted token works with --url: {}", output.stderr);
    cli.ok(&["admin-tokens", "revoke", &token_id]).await;
    let output = cli.run_with(&["apps", "list", "--url", &vault.base], None, &with_token).await;
    assert_eq!(output.code, 3, "{}", output.stderr);
    assert!(output.stderr.starts_with("error: invalid_admin_token: "), "{}", output.stderr);
    assert!(output.stderr.trim_end().ends_with(')') && output.stderr.contains("(request "), "{}", output.stderr);
    assert!(!output.stderr.contains(&token), "not even a revoked credential is printed");
    let listed = cli.json(&["admin-tokens", "list"]).await;
    assert!(listed["data"][0]["revoked_at"].is_string(), "{listed}");

    // Data keys over HTTP.
    let keys = cli.json(&["keys", "list"]).await;
    assert_eq!(keys["data"][0]["state"], "active", "{keys}");
    assert!(cli.ok(&["keys", "list"]).await.contains("SEALED_VALUES"));

    cli.ok(&["apps", "delete", &app_id]).await;
    assert!(!ids(&cli.json(&["apps", "list"]).await).contains(&app_id));

    // Logout removes exactly one profile.
    cli.ok(&["logout", "--profile", "seed"]).await;
    let profiles = cli.json(&["profiles"]).await;
    assert_eq!(profiles["data"].as_array().unwrap().len(), 1, "{profiles}");
    assert!(!std::fs::read_to_string(&cli.config).unwrap().contains(&app_key));
    assert_eq!(mode_of(&cli.config), 0o600);
    let output = cli.run(&["apps", "get", "--profile", "seed"]).await;
    assert_eq!(output.code, 1);
    assert!(output.stderr.contains("no profile `seed`"), "{}", output.stderr);
}

async fn errors_are_one_line_with_distinct_exit_codes_and_completions_are_printed(env: ConnectEnv) {
    let vault = &env.vault;
    let (_, key) = vault.new_app("acme").await;
    let mut cli = Cli::new();
    let wrong_key = format!("tvk_{}_{}", "0".repeat(32), "A".repeat(43));
    cli.never_shown = vec![ADMIN_TOKEN.to_owned(), key.clone(), wrong_key.clone()];

    // Nothing names a vault.
    let output = cli.run(&["grants", "list"]).await;
    assert_eq!(output.code, 1);
    assert!(output.stderr.starts_with("error: no vault to talk to"), "{}", output.stderr);

    // A refused credential: the API's error, one line, exit code 3.
    let output =
        cli.run_with(&["grants", "list", "--url", &vault.base], None, &[("TOKENVAULT_API_KEY", &wrong_key)]).await;
    assert_eq!(output.code, 3, "{}", output.stderr);
    assert_eq!(output.stderr.lines().count(), 1, "{}", output.stderr);
    assert!(output.stderr.starts_with("error: invalid_api_key: the API key is not valid"), "{}", output.stderr);
    assert!(output.stderr.contains("(request "), "{}", output.stderr);
    assert!(output.stdout.is_empty());

    // A wrong credential at login is refused and nothing is saved.
    let output = cli.run(&["login", "--url", &vault.base, "--api-key", &wrong_key]).await;
    assert_eq!(output.code, 3, "{}", output.stderr);
    assert!(
        output.stderr.contains("nothing was saved") && output.stderr.contains("invalid_api_key"),
        "{}",
        output.stderr
    );
    assert!(!cli.config.exists());

    // An unknown id: 404, exit code 3; a malformed one is refused before any request.
    cli.ok(&["login", "--url", &vault.base, "--api-key", &key]).await;
    let output = cli.run(&["grants", "get", "grt_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e"]).await;
    assert_eq!(output.code, 3, "{}", output.stderr);
    assert!(output.stderr.starts_with("error: not_found: "), "{}", output.stderr);
    let output = cli.run(&["grants", "get", "../app"]).await;
    assert_eq!(output.code, 1, "{}", output.stderr);
    assert!(output.stderr.starts_with("error: invalid_id: "), "{}", output.stderr);
    // An admin command with only an API key says what is missing.
    let output = cli.run(&["admin-tokens", "list"]).await;
    assert_eq!(output.code, 1);
    assert!(output.stderr.contains("needs an admin token"), "{}", output.stderr);

    // No vault listening: exit code 4.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let output = cli
        .run_with(&["grants", "list", "--url", &format!("http://{closed}")], None, &[("TOKENVAULT_API_KEY", &key)])
        .await;
    assert_eq!(output.code, 4, "{}", output.stderr);
    assert!(output.stderr.starts_with("error: cannot reach the vault at"), "{}", output.stderr);

    // A profile file others can read is still used, with a warning.
    std::fs::set_permissions(&cli.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = cli.run(&["grants", "list"]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stderr.contains("can be read by other users"), "{}", output.stderr);

    let script = cli.ok(&["completions", "bash"]).await;
    assert!(script.contains("_tokenvault()") && script.contains("complete -F"), "{}", &script[..200.min(script.len())]);
    assert!(script.contains("provider-configs") && script.contains("--json"));
    for shell in ["zsh", "fish"] {
        assert!(cli.ok(&["completions", shell]).await.contains("tokenvault"), "{shell}");
    }
}

/// Registers at the fake provider the client a configuration was made for, with the redirect
/// URI the vault answered (what a provider's developer console does).
fn register(env: &ConnectEnv, fake: Provider, config: &Value, client_secret: &str, scopes: Vec<String>) {
    env.fakes.control().register_client(
        fake,
        ClientRegistration {
            client_id: config["client_id"].as_str().unwrap().to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: vec![config["redirect_uri"].as_str().unwrap().to_owned()],
            scopes,
            install_uri: config["install_uri"].as_str().map(str::to_owned),
        },
    );
}

async fn the_app_commands_cover_connect_grants_policies_secrets_webhooks_and_audit(env: ConnectEnv) {
    let mut cli = Cli::new();
    let zoom_secret = "zoom-secret-from-stdin";
    let managed_value = "partner-api-key-from-stdin";
    cli.never_shown = vec![env.key.clone(), ADMIN_TOKEN.to_owned(), zoom_secret.into(), managed_value.into()];
    cli.ok(&["login", "--url", &env.vault.base, "--api-key", &env.key]).await;

    // The catalog needs no credential.
    let providers = cli.json(&["providers", "list"]).await;
    assert!(ids(&providers).contains(&"zoom".to_owned()), "{providers}");

    // Provider configurations; the client secret comes from standard input or a file.
    let config = cli
        .json_with(
            &[
                "provider-configs",
                "create",
                "--provider",
                "zoom",
                "--client-id",
                "zoom-client",
                "--client-secret-file",
                "-",
            ],
            Some(&format!("{zoom_secret}\n")),
        )
        .await;
    let config_id = config["id"].as_str().unwrap().to_owned();
    assert_eq!(config["client_secret_set"], true);
    register(&env, Provider::Zoom, &config, zoom_secret, vec!["user:read:user".into(), "meeting:read:meeting".into()]);
    let table = cli.ok(&["provider-configs", "list"]).await;
    assert!(table.contains(&config_id) && table.contains("REDIRECT_URI"), "{table}");
    assert_eq!(cli.json(&["provider-configs", "get", &config_id]).await["client_id"], "zoom-client");
    let secret_file = cli.file("zoom-secret", &format!("{zoom_secret}\n"));
    let secret_file = secret_file.to_str().unwrap();
    let updated = cli
        .json(&[
            "provider-configs",
            "update",
            &config_id,
            "--client-id",
            "zoom-client",
            "--client-secret-file",
            secret_file,
        ])
        .await;
    assert_eq!(updated["provider"], "zoom", "the provider was taken from the current configuration");
    let output = cli
        .run(&["provider-configs", "create", "--body", r#"{"provider":"zoom","client_id":"x","client_secret":"argv"}"#])
        .await;
    assert_eq!(output.code, 1, "a secret on the command line is refused");
    assert!(output.stderr.contains("`client_secret` must not be given on the command line"), "{}", output.stderr);

    // A webhook endpoint on loopback (the test vault allows private egress).
    let hook = cli.json(&["webhooks", "create", "http://127.0.0.1:9/hook", "--event", "grant.connected"]).await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    assert!(hook["secret"].as_str().is_some_and(|s| !s.is_empty()), "the signing secret is shown once: {hook}");
    let listed = cli.ok(&["webhooks", "list"]).await;
    assert!(listed.contains(&hook_id) && !listed.contains(hook["secret"].as_str().unwrap()), "{listed}");

    // A connect session, completed by a browser, polled from the CLI.
    let session = cli
        .json(&[
            "connect-sessions",
            "create",
            "--end-user-id",
            "alice",
            "--return-url",
            RETURN_URL,
            "--provider",
            "zoom",
        ])
        .await;
    let session_id = session["id"].as_str().unwrap().to_owned();
    assert_eq!(cli.json(&["connect-sessions", "get", &session_id]).await["status"], "pending");
    let (authorize, cookies) = env.open(session["connect_url"].as_str().unwrap()).await;
    let callback = env.consent(&authorize).await;
    let done = env.get(&callback, &cookies).await;
    let grant_id = query_of(&done.location.expect("redirected back"))["grant_id"].clone();
    let polled = cli.json(&["connect-sessions", "get", &session_id]).await;
    assert_eq!((polled["status"].as_str(), polled["grant_id"].as_str()), (Some("succeeded"), Some(grant_id.as_str())));

    // Grants: listed with filters, one shown, a token fetched.
    let grants =
        cli.json(&["grants", "list", "--end-user-id", "alice", "--provider", "zoom", "--status", "active"]).await;
    assert_eq!(ids(&grants), [grant_id.as_str()]);
    assert!(ids(&cli.json(&["grants", "list", "--end-user-id", "bob"]).await).is_empty());
    let table = cli.ok(&["grants", "list"]).await;
    assert!(table.contains(&grant_id) && table.contains("active"), "{table}");
    assert_eq!(cli.json(&["grants", "get", &grant_id]).await["end_user_id"], "alice");
    let token =
        cli.ok(&["grants", "token", &grant_id, "--actor", "ai_agent:assistant-1", "--actor-reason", "cli test"]).await;
    let token = token.trim();
    assert!(!token.is_empty() && !token.contains(' '), "the bare token: {token}");
    let as_json = cli.json(&["grants", "token", &grant_id]).await;
    assert_eq!(as_json["grant_id"], grant_id.as_str());
    assert!(as_json["access_token"].is_string());

    // Policies.
    let policy = cli
        .json(&[
            "policies",
            "create",
            "--target",
            "grant",
            "--target-id",
            &grant_id,
            "--method",
            "GET",
            "--path",
            "/v2/**",
            "--rate-limit",
            "100/60",
        ])
        .await;
    let policy_id = policy["id"].as_str().unwrap().to_owned();
    assert_eq!(policy["rules"]["rate_limit"]["per_seconds"], 60, "{policy}");
    let body = r#"{"target_type":"app","rules":{"time_windows":[{"start":"00:00","end":"23:59"}]}}"#;
    let windowed = cli.json(&["policies", "create", "--body", body]).await;
    assert_eq!(windowed["rules"]["time_windows"][0]["start"], "00:00");
    let listed = cli.json(&["policies", "list"]).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    assert!(cli.ok(&["policies", "list"]).await.contains(&policy_id));
    cli.ok(&["policies", "delete", &policy_id]).await;
    cli.ok(&["policies", "delete", windowed["id"].as_str().unwrap()]).await;

    // A managed secret, its value from standard input, then replaced from a file.
    let created = cli
        .json_with(
            &["secrets", "create", "--name", "partner", "--style", "bearer", "--base-url", "http://127.0.0.1:9/api"],
            Some(&format!("{managed_value}\n")),
        )
        .await;
    let secret_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["secret_set"], true);
    assert!(cli.ok(&["secrets", "list"]).await.contains(&secret_id));
    let value_file = cli.file("value", &format!("{managed_value}-2"));
    let replaced = cli
        .json(&[
            "secrets",
            "replace",
            &secret_id,
            "--name",
            "partner",
            "--style",
            "header",
            "--header-name",
            "x-api-key",
            "--base-url",
            "http://127.0.0.1:9/api",
            "--value-file",
            value_file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(replaced["header_name"], "x-api-key");
    assert_eq!(cli.json(&["secrets", "get", &secret_id]).await["style"], "header");
    cli.ok(&["secrets", "delete", &secret_id]).await;
    let gone = cli.json(&["secrets", "get", &secret_id]).await;
    assert_eq!(gone["secret_set"], false, "deleted: the value is erased: {gone}");

    // The audit log: a page, filtered, and the export as JSON lines.
    env.vault.vault.flush_audit().await;
    let events = cli.json(&["audit", "query", "--grant-id", &grant_id, "--action", "token.retrieved"]).await;
    let events = events["data"].as_array().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events.iter().any(|e| e["actor"]["id"] == "assistant-1" && e["actor"]["reason"] == "cli test"),
        "{events:?}"
    );
    let page = cli.json(&["audit", "query", "--limit", "1"]).await;
    let cursor = page["next_cursor"].as_str().expect("more than one event").to_owned();
    let next = cli.json(&["audit", "query", "--limit", "1", "--after", &cursor]).await;
    assert_ne!(ids(&next), ids(&page));
    let table = cli.ok(&["audit", "query", "--actor-id", "assistant-1"]).await;
    assert!(table.starts_with("AT") && table.contains("token.retrieved") && table.contains("assistant-1"), "{table}");
    let exported = cli.ok(&["audit", "export", "--grant-id", &grant_id]).await;
    let lines: Vec<Value> = exported.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert!(lines.len() >= 2 && lines.iter().all(|e| e["grant_id"] == grant_id.as_str()), "{exported}");

    // An install started at Aircall, claimed from the CLI; verified; then grants disconnected.
    cli.ok(&["apps", "update", "--install-return-url", "https://app.example.com/aircall/installed"]).await;
    let aircall = cli
        .json_with(
            &[
                "provider-configs",
                "create",
                "--provider",
                "aircall",
                "--client-id",
                "aircall-client",
                "--client-secret-file",
                "-",
            ],
            Some("aircall-secret-1"),
        )
        .await;
    register(
        &env,
        Provider::Aircall,
        &aircall,
        "aircall-secret-1",
        aircall["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
    );
    let start = env.get(aircall["install_uri"].as_str().unwrap(), &[]).await;
    let callback = env.consent(start.location.as_deref().unwrap()).await;
    let landed = env.get(&callback, &start.cookies).await;
    let claim = query_of(landed.location.as_deref().unwrap())["claim"].clone();
    let claimed = cli.json(&["installs", "claim", "--claim", &claim, "--end-user-id", "bob"]).await;
    let installed = claimed["grant_id"].as_str().unwrap().to_owned();
    assert_eq!(cli.json(&["grants", "verify", &installed]).await["status"], "active");
    let again = cli.run(&["installs", "claim", "--claim", &claim, "--end-user-id", "bob"]).await;
    assert_eq!(again.code, 3);
    assert!(again.stderr.starts_with("error: claim_already_used: "), "{}", again.stderr);

    for grant in [&grant_id, &installed] {
        let gone = cli.json(&["grants", "disconnect", grant]).await;
        assert_eq!(gone["status"], "revoked", "{gone}");
    }
    let output = cli.run(&["grants", "token", &grant_id]).await;
    assert_eq!(output.code, 3);
    assert!(output.stderr.starts_with("error: grant_revoked: "), "{}", output.stderr);

    // The delivery log shows the grant.connected events for the endpoint, then it is removed.
    let deliveries = cli.json(&["webhooks", "deliveries", "--endpoint-id", &hook_id]).await;
    assert!(!deliveries["data"].as_array().unwrap().is_empty(), "{deliveries}");
    assert!(cli.ok(&["webhooks", "deliveries"]).await.contains("grant.connected"));
    cli.ok(&["webhooks", "delete", &hook_id]).await;
    cli.ok(&["provider-configs", "delete", aircall["id"].as_str().unwrap()]).await;
}

/// Scoped keys (create, rotate, derive), agents (create, suspend, activate, key, revoke) and
/// delegations (create, list, get, revoke) from the command line, checked against the API.
async fn the_key_agent_and_delegation_commands_work(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let mut cli = Cli::new();
    cli.never_shown = vec![env.key.clone(), ADMIN_TOKEN.to_owned()];
    cli.ok(&["login", "--url", &env.vault.base, "--api-key", &env.key]).await;
    let get = |key: String, path: String| {
        let vault = &env.vault;
        async move { vault.call(Method::GET, &path, Some(&key), None).await.0 }
    };

    // A scoped key of the app, then rotated: both work during the grace.
    let reader = cli
        .ok(&[
            "api-keys",
            "create",
            "--name",
            "reader",
            "--scope",
            "grants:read",
            "--scope",
            "keys:admin",
            "--expires-in",
            "3600",
        ])
        .await
        .trim()
        .to_owned();
    assert!(reader.starts_with("tvk_"), "{reader}");
    assert_eq!(get(reader.clone(), "/v1/grants".into()).await, StatusCode::OK);
    assert_eq!(get(reader.clone(), "/v1/app".into()).await, StatusCode::FORBIDDEN, "only its scopes");
    let reader_id = format!("key_{}", &reader[4..36]);
    let rotated = cli.ok(&["api-keys", "rotate", &reader_id, "--grace-seconds", "600"]).await.trim().to_owned();
    assert!(rotated.starts_with("tvk_") && rotated != reader);
    assert_eq!(get(reader.clone(), "/v1/grants".into()).await, StatusCode::OK, "the old key works in the grace");
    assert_eq!(get(rotated.clone(), "/v1/grants".into()).await, StatusCode::OK);
    let listed = cli.json(&["api-keys", "list"]).await;
    let row = listed["data"].as_array().unwrap().iter().find(|k| k["id"] == reader_id.as_str()).unwrap().clone();
    assert!(row["replaced_by"].is_string(), "{row}");

    // Agents and delegations.
    let agent = cli.json(&["agents", "create", "assistant", "--description", "reads meetings"]).await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(agent["status"], "active");
    let agent_key = cli.ok(&["agents", "key", &agent_id, "--scope", "proxy:execute"]).await.trim().to_owned();
    let proxied = format!("/v1/proxy/{grant_id}/v2/users/me");
    assert_eq!(get(agent_key.clone(), proxied.clone()).await, StatusCode::NOT_FOUND, "nothing delegated yet");
    let delegation =
        cli.json(&["delegations", "create", &agent_id, &grant_id, "--method", "GET", "--path", "/v2/users/**"]).await;
    let delegation_id = delegation["id"].as_str().unwrap().to_owned();
    assert_eq!(delegation["proxy_only"], true);
    assert_eq!(get(agent_key.clone(), proxied.clone()).await, StatusCode::OK);
    let table = cli.ok(&["delegations", "list", &agent_id]).await;
    assert!(table.lines().next().unwrap().starts_with("ID") && table.contains(&delegation_id), "{table}");
    assert_eq!(cli.json(&["delegations", "get", &delegation_id]).await["grant_id"], grant_id.as_str());
    assert_eq!(cli.json(&["agents", "suspend", &agent_id]).await["status"], "suspended");
    assert_eq!(get(agent_key.clone(), proxied.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(cli.json(&["agents", "activate", &agent_id]).await["status"], "active");
    assert_eq!(get(agent_key.clone(), proxied.clone()).await, StatusCode::OK);
    let table = cli.ok(&["agents", "list"]).await;
    assert!(table.contains(&agent_id) && table.contains("assistant"), "{table}");
    assert_eq!(cli.json(&["agents", "get", &agent_id]).await["description"], "reads meetings");
    cli.ok(&["delegations", "revoke", &delegation_id]).await;
    assert_eq!(get(agent_key.clone(), proxied.clone()).await, StatusCode::NOT_FOUND);

    // A derived key of the API key in use, short-lived by default.
    let derived = cli.json(&["api-keys", "derive", "--scope", "grants:read"]).await;
    assert!(derived["parent_id"].is_string() && derived["expires_at"].is_string(), "{derived}");
    let child = derived["key"].as_str().unwrap().to_owned();
    assert_eq!(get(child.clone(), "/v1/grants".into()).await, StatusCode::OK);

    cli.ok(&["agents", "revoke", &agent_id]).await;
    assert_eq!(get(agent_key, proxied).await, StatusCode::UNAUTHORIZED);
}

/// approvals (list, get, link, approve, deny, execute, result) and the `--approval-*` policy
/// flags from the command line, checked against the fake provider.
async fn the_approval_commands_hold_decide_and_execute(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let mut cli = Cli::new();
    cli.never_shown = vec![env.key.clone(), ADMIN_TOKEN.to_owned()];
    cli.ok(&["login", "--url", &env.vault.base, "--api-key", &env.key]).await;
    let policy = cli
        .json(&[
            "policies",
            "create",
            "--target",
            "app",
            "--approval-method",
            "DELETE",
            "--approval-path",
            "/v2/meetings/*",
        ])
        .await;
    assert_eq!(policy["rules"]["require_approval"]["methods"], serde_json::json!(["DELETE"]), "{policy}");
    let agent_id = cli.json(&["agents", "create", "assistant"]).await["id"].as_str().unwrap().to_owned();
    let agent_key = cli.ok(&["agents", "key", &agent_id]).await.trim().to_owned();
    cli.never_shown.push(agent_key.clone());
    cli.json(&["delegations", "create", &agent_id, &grant_id]).await;
    let as_agent = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (cli, url, key) = (&cli, env.vault.base.clone(), agent_key.clone());
        async move {
            let args: Vec<&str> = ["--url", url.as_str()].into_iter().chain(args.iter().map(String::as_str)).collect();
            cli.run_with(&args, None, &[("TOKENVAULT_API_KEY", key.as_str())]).await
        }
    };
    let hold = |meeting: &'static str| {
        let (vault, key, grant_id) = (&env.vault, agent_key.clone(), grant_id.clone());
        async move {
            let url = vault.url(&format!("/v1/proxy/{grant_id}/v2/meetings/{meeting}"));
            let held: Value = vault.http.delete(url).bearer_auth(key).send().await.unwrap().json().await.unwrap();
            held["approval_id"].as_str().unwrap().to_owned()
        }
    };
    let first = hold("85746065").await;
    let table = cli.ok(&["approvals", "list", "--status", "pending"]).await;
    assert!(
        table.lines().next().unwrap().starts_with("ID") && table.contains(&first) && table.contains("DELETE"),
        "{table}"
    );
    assert_eq!(cli.json(&["approvals", "get", &first, "--wait", "0"]).await["status"], "pending");
    // The default approvers are the operators: no end-user link for this one, an operator's.
    let refused = cli.run(&["approvals", "link", &first]).await;
    assert!(refused.code != 0 && refused.stderr.contains("approver_not_allowed"), "{}", refused.stderr);
    let link = cli.ok(&["approvals", "link", &first, "--approver", "operator"]).await.trim().to_owned();
    assert!(link.contains("/approve/"), "{link}");
    assert_eq!(env.vault.http.get(&link).send().await.unwrap().status(), StatusCode::OK);
    let decided = cli.json(&["approvals", "approve", &first, "--comment", "go"]).await;
    assert_eq!(decided["status"], "approved", "{decided}");
    // The agent executes it; the provider's answer is printed.
    let executed = as_agent(&["approvals", "execute", &first]).await;
    assert_eq!(executed.code, 0, "{}", executed.stderr);
    assert!(executed.stderr.contains("provider answered 204"), "{}", executed.stderr);
    let again = as_agent(&["approvals", "execute", &first]).await;
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("already_executed"), "{}", again.stderr);
    let result = as_agent(&["approvals", "result", &first]).await;
    assert_eq!(result.code, 0, "{}", result.stderr);
    // Denied: not on the end user's behalf (the rule wants operators).
    let second = hold("85746066").await;
    let refused = cli.run(&["approvals", "deny", &second, "--for-end-user"]).await;
    assert!(refused.code != 0 && refused.stderr.contains("approver_not_allowed"), "{}", refused.stderr);
    let denied = cli.json(&["approvals", "deny", &second, "--comment", "no"]).await;
    assert_eq!(denied["status"], "denied", "{denied}");
    let refused = as_agent(&["approvals", "execute", &second]).await;
    assert!(refused.code != 0 && refused.stderr.contains("approval_denied"), "{}", refused.stderr);
}
