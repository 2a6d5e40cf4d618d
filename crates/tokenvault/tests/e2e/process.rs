//! The `tokenvault` binary as an operator runs it: a real process, signals, files on disk.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

pub fn tokenvault() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokenvault"));
    command
        .env_remove("TOKENVAULT_MASTER_KEY")
        .env_remove("TOKENVAULT_DATABASE_URL")
        .env_remove("TOKENVAULT_ADMIN_TOKEN")
        .env_remove("TOKENVAULT_API_KEY")
        .env_remove("TOKENVAULT_URL")
        .env_remove("TOKENVAULT_PROFILE")
        .env_remove("TOKENVAULT_ACTOR")
        .env_remove("TOKENVAULT_ACTOR_REASON")
        // Never the profiles of whoever runs the tests: without a profile, the app and key
        // commands open the database directly.
        .env("TOKENVAULT_CLI_CONFIG", "/nonexistent/tokenvault-test/cli.toml");
    command
}

/// Starts `tokenvault serve` on port 0 and waits for its "listening on" line.
fn spawn_server(
    data_dir: &std::path::Path,
    extra: &[&str],
) -> (Child, String, Vec<String>, std::sync::mpsc::Receiver<String>) {
    let mut command = tokenvault();
    // Test receivers listen on loopback, which the egress guard refuses unless allowed.
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-private-egress", "--data-dir"])
        .arg(data_dir)
        .args(extra);
    spawn(command)
}

/// Spawns a prepared `tokenvault serve` command and waits for its "listening on" line.
pub fn spawn(mut command: Command) -> (Child, String, Vec<String>, std::sync::mpsc::Receiver<String>) {
    // A test that fails before it stops its server must not leave the server running (holding
    // ports, files and the CI job): the child dies with the thread that started it.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().expect("binary starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let base = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no listening line; saw {seen:?}"));
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_owned();
        }
        seen.push(line);
    };
    (child, base, seen, rx)
}

/// Sends SIGTERM and waits for the exit; a process still alive after 60 s is killed and the test fails.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    signal_and_wait(child, libc::SIGTERM)
}

/// Sends `signal` and waits for the exit; a process still alive after 60 s is killed and the test fails.
pub fn signal_and_wait(child: &mut Child, signal: i32) -> std::process::ExitStatus {
    let pid = child.id() as i32;
    unsafe { libc::kill(pid, signal) };
    let (exited, watchdog) = std::sync::mpsc::channel::<()>();
    let guard = std::thread::spawn(move || {
        if watchdog.recv_timeout(std::time::Duration::from_secs(60)).is_err() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    let status = child.wait().unwrap();
    let _ = exited.send(());
    assert!(!guard.join().unwrap(), "tokenvault did not stop within 60 s of the signal");
    status
}

#[tokio::test]
async fn embedded_default_creates_key_file_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (mut child, base, startup_logs, logs) = spawn_server(&data_dir, &["--log-format", "json"]);

    let key_file = data_dir.join("master.key");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(data_dir.join("tokenvault.db").exists());

    // `tokenvault admin-token` works against the running server's database.
    let output = tokenvault().args(["admin-token", "--data-dir"]).arg(&data_dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let admin = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(admin.starts_with("tva_"));

    let http = reqwest::Client::new();
    let app: serde_json::Value = http
        .post(format!("{base}/admin/v1/apps"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "name": "cli-made" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_id = app["id"].as_str().unwrap();
    let output = tokenvault()
        .args(["api-keys", "create", app_id, "--full-access", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let response = http.get(format!("{base}/v1/app")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 200);

    assert!(terminate(&mut child).success(), "graceful shutdown exits 0");
    let logs: Vec<String> = startup_logs.into_iter().chain(logs.try_iter()).collect();
    let all = logs.join("\n");
    assert!(all.contains("losing it loses every stored credential"), "{all}");
    assert!(
        logs.iter().filter(|l| l.starts_with('{')).all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{all}"
    );
    assert!(all.contains("\"request_id\""), "{all}");
    for secret in [&admin, &key] {
        assert!(!all.contains(secret.as_str()), "a secret reached the logs");
    }
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    assert!(!all.contains(key_text.trim()), "the master key reached the logs");

    // Same key file, same data: a second start serves the same key.
    let (mut child, base, _, _) = spawn_server(&data_dir, &[]);
    let response = http.get(format!("{base}/v1/app")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(terminate(&mut child).success());
}

#[test]
fn missing_key_file_for_an_existing_database_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let output = tokenvault().args(["apps", "list", "--data-dir"]).arg(&data_dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::remove_file(data_dir.join("master.key")).unwrap();
    let output = tokenvault().args(["apps", "list", "--data-dir"]).arg(&data_dir).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("master key file") && stderr.contains("missing"), "{stderr}");
}

#[test]
fn a_different_master_key_is_refused_with_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    assert!(tokenvault().args(["apps", "list", "--data-dir"]).arg(&data_dir).output().unwrap().status.success());
    let output = tokenvault()
        .args(["apps", "list", "--data-dir"])
        .arg(&data_dir)
        .env("TOKENVAULT_MASTER_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not the one this database was set up with"), "{stderr}");
}

#[test]
fn postgres_without_a_master_key_is_refused_clearly() {
    let output =
        tokenvault().args(["apps", "list", "--database-url", "postgres://postgres@127.0.0.1:1/none"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TOKENVAULT_MASTER_KEY"), "{stderr}");
}

#[tokio::test]
async fn keys_rotate_from_the_cli_while_the_server_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let ttl = ["--key-cache-ttl-seconds", "1"];
    let (mut child, base, _, _) = spawn_server(&data_dir, &ttl);
    let run = |args: &[&str]| {
        let output = tokenvault().args(args).arg("--data-dir").arg(&data_dir).args(ttl).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let app: serde_json::Value = serde_json::from_str(&run(&["apps", "create", "rot", "--json"])).unwrap();
    let key = run(&["api-keys", "create", app["id"].as_str().unwrap(), "--full-access"]).trim().to_owned();
    let http = reqwest::Client::new();
    let config = serde_json::json!({ "provider": "aircall", "client_id": "c", "client_secret": "rotate-me-secret" });
    let created =
        http.post(format!("{base}/v1/provider-configs")).bearer_auth(&key).json(&config).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let config_id = created.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    let report: serde_json::Value = serde_json::from_str(&run(&["keys", "rotate", "--json"])).unwrap();
    assert_eq!(report["new_key_id"], 2);
    let keys: serde_json::Value = serde_json::from_str(&run(&["keys", "list", "--json"])).unwrap();
    let keys = &keys["data"];
    assert_eq!(keys[0]["state"], "retired");
    assert_eq!(keys[1]["state"], "active");
    assert_eq!(keys[1]["sealed_values"], 1);

    // The running server picked up the new key and keeps serving.
    let updated = http
        .put(format!("{base}/v1/provider-configs/{config_id}"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "provider": "aircall", "client_id": "c2", "client_secret": "rotated-secret" }))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let keys: serde_json::Value = serde_json::from_str(&run(&["keys", "list", "--json"])).unwrap();
    assert_eq!(keys["data"][1]["sealed_values"], 1, "the update was sealed with the new key: {keys}");
    assert!(terminate(&mut child).success());
}

/// Runs a CLI command against a data directory; returns stdout, failing the test on a non-zero exit.
fn cli(data_dir: &std::path::Path, args: &[&str]) -> String {
    let output = tokenvault().args(args).arg("--data-dir").arg(data_dir).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn environment_beats_the_config_file_the_cli_manages_apps_and_keys_and_sigint_stops() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file");
    let from_env = dir.path().join("from-env");
    let config = dir.path().join("tokenvault.toml");
    std::fs::write(&config, format!("data_dir = {:?}\nlog_format = \"json\"\n", from_file.display().to_string()))
        .unwrap();
    let mut command = tokenvault();
    command.env("TOKENVAULT_DATA_DIR", &from_env).args(["serve", "--listen", "127.0.0.1:0", "--config"]).arg(&config);
    let (mut child, base, startup_logs, _) = spawn(command);
    // The environment variable won over the file; the file still supplied what nothing else set.
    assert!(from_env.join("master.key").exists());
    assert!(!from_file.exists());
    assert!(startup_logs.iter().any(|line| line.starts_with('{')), "{startup_logs:?}");

    // Every app and key command works beside the running server, on the same database.
    let app: serde_json::Value = serde_json::from_str(&cli(&from_env, &["apps", "create", "ops", "--json"])).unwrap();
    let app_id = app["id"].as_str().unwrap();
    let key = cli(&from_env, &["api-keys", "create", app_id, "--full-access"]).trim().to_owned();
    let http = reqwest::Client::new();
    let response = http.get(format!("{base}/v1/app")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let listed = cli(&from_env, &["api-keys", "list", app_id, "--json"]);
    assert!(!listed.contains(&key), "a listing never shows the secret");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let keys = listed.as_array().or_else(|| listed["data"].as_array()).expect("a list of keys");
    assert_eq!(keys.len(), 1, "{listed}");
    let key_id = keys[0]["id"].as_str().unwrap();

    cli(&from_env, &["api-keys", "revoke", app_id, key_id]);
    // The server is another process: it learns of the revocation through the change feed, within
    // the caches' staleness bound.
    let deadline =
        std::time::Instant::now() + tokenvault_service::STALENESS_BOUND + std::time::Duration::from_millis(1500);
    loop {
        let response = http.get(format!("{base}/v1/app")).bearer_auth(&key).send().await.unwrap();
        if response.status() == 401 {
            break;
        }
        assert_eq!(response.status(), 200);
        assert!(std::time::Instant::now() < deadline, "a key revoked from the CLI still works after the bound");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    cli(&from_env, &["apps", "delete", app_id]);
    assert!(!cli(&from_env, &["apps", "list"]).contains(app_id));

    assert!(signal_and_wait(&mut child, libc::SIGINT).success(), "SIGINT is a graceful shutdown too");
}
