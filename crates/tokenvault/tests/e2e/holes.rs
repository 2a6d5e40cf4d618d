//! Issue 8, the smaller holes: values a header cannot carry, page limits out of range, the JSON
//! error shape for every 4xx (hyper's own answers included), the master key file's permissions
//! and the database files' modes, and secrets in URLs kept out of the logs.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::connect_env::ConnectEnv;
use crate::support::{TestVault, assert_error_shape};
use crate::{connect_tests, on_both_backends};

/// Item 1: managed-secret values the proxy could not send as they are.
mod header_values {
    use super::*;
    connect_tests!(
        a_managed_secret_that_a_header_cannot_carry_is_refused_at_creation_and_never_stored,
        replacing_a_managed_secret_with_an_unsendable_value_is_refused_and_the_old_value_keeps_working,
    );
}

/// Item 3: `limit` outside 1..=max is a 400, not clamped.
mod page_limits {
    use super::*;
    on_both_backends!(page_limits_outside_the_documented_range_are_refused_on_every_list_endpoint);
}

/// Values with a byte no header may carry (CR, LF, NUL, other controls), or that a recipient
/// would read differently (spaces at the ends, non-ASCII) for the styles sent verbatim.
const UNSENDABLE: [(&str, &str); 9] = [
    ("bearer", "tok-hole-1\r\nX-Injected: yes"),
    ("bearer", "tok-hole-2\n"),
    ("bearer", "tok-hole-3\0"),
    ("bearer", " tok-hole-4"),
    ("header", "tok-hole-5\r"),
    ("header", "tok-hole-6\u{7f}"),
    ("header", "tök-hole-7"),
    ("basic", "tok-hole-8\n"),
    ("query", "tok-hole-9\r\n"),
];

fn style_body(style: &str) -> Value {
    match style {
        "bearer" => json!({ "style": "bearer" }),
        "header" => json!({ "style": "header", "header_name": "X-Api-Key" }),
        "basic" => json!({ "style": "basic", "username": "svc" }),
        _ => json!({ "style": "query", "query_parameter": "api_key" }),
    }
}

fn managed_secret(env: &ConnectEnv, style: &str, secret: &str) -> Value {
    let mut body = style_body(style);
    body["name"] = json!("partner api");
    body["secret"] = json!(secret);
    body["base_urls"] = json!([env.fakes.urls().evil.clone()]);
    body
}

async fn a_managed_secret_that_a_header_cannot_carry_is_refused_at_creation_and_never_stored(env: ConnectEnv) {
    for (style, secret) in UNSENDABLE {
        let (status, body) =
            env.api(Method::POST, "/v1/managed-secrets", Some(managed_secret(&env, style, secret))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{style} {secret:?}: {body}");
        assert_eq!(assert_error_shape(status, &body), "invalid_secret_value", "{style} {secret:?}");
        assert!(body["message"].as_str().unwrap().contains("`secret`"), "{body}");
        assert!(!body.to_string().contains("tok-hole"), "the value is not echoed: {body}");
    }
    // A Basic username is sent too: a colon or a control character in it is refused as well.
    for username in ["svc\r\nX-Injected: yes", "svc:admin", "svc\0"] {
        let mut body = managed_secret(&env, "basic", "fine-secret");
        body["username"] = json!(username);
        let (status, answer) = env.api(Method::POST, "/v1/managed-secrets", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{username:?}: {answer}");
        assert_eq!(assert_error_shape(status, &answer), "invalid_managed_secret", "{username:?}");
        assert!(answer["message"].as_str().unwrap().contains("`username`"), "{answer}");
    }
    // A header name that is not a header name (CR/LF in it) is refused.
    let mut body = managed_secret(&env, "header", "fine-secret");
    body["header_name"] = json!("X-Api-Key\r\nX-Injected");
    let (status, answer) = env.api(Method::POST, "/v1/managed-secrets", Some(body)).await;
    assert_eq!(
        (status, assert_error_shape(status, &answer).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_managed_secret")
    );

    let (status, listed) = env.api(Method::GET, "/v1/managed-secrets", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "nothing was stored: {listed}");
    env.vault.vault.flush_audit().await;
    let (_, audit) = env.api(Method::GET, "/v1/audit?action=managed_secret.created", None).await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 0, "nothing was created: {audit}");

    // The same requests with sendable values are accepted: the rule is about the bytes only.
    for (style, secret) in [("bearer", "sk_live_0123-ABC.~+/="), ("basic", " pässword with spaces "), ("query", "ä b")]
    {
        let (status, body) =
            env.api(Method::POST, "/v1/managed-secrets", Some(managed_secret(&env, style, secret))).await;
        assert_eq!(status, StatusCode::CREATED, "{style}: {body}");
    }
}

async fn replacing_a_managed_secret_with_an_unsendable_value_is_refused_and_the_old_value_keeps_working(
    env: ConnectEnv,
) {
    for style in ["bearer", "header", "basic", "query"] {
        let old = format!("old-{style}-value");
        let (status, created) =
            env.api(Method::POST, "/v1/managed-secrets", Some(managed_secret(&env, style, &old))).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        for (_, bad) in UNSENDABLE.iter().filter(|(s, _)| *s == style) {
            let (status, body) = env
                .api(Method::PUT, &format!("/v1/managed-secrets/{id}"), Some(managed_secret(&env, style, bad)))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{style} {bad:?}: {body}");
            assert_eq!(assert_error_shape(status, &body), "invalid_secret_value");
        }
        // The old value is still the one injected.
        let response = env
            .vault
            .http
            .get(env.vault.url(&format!("/v1/proxy/{id}/partner/x")))
            .bearer_auth(&env.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{style}");
        let seen = env.fakes.control().evil_requests().pop().expect("the partner API was called");
        let sent = format!("{:?} {:?}", seen.path, seen.headers);
        let expected = match style {
            "basic" => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(format!("svc:{old}"))
            }
            _ => old.clone(),
        };
        assert!(sent.contains(&expected), "{style}: the old value is still sent: {sent}");
        assert!(!sent.contains("tok-hole"), "{style}: {sent}");
    }
}

/// The list endpoints and their documented maximum (`limit` is 1..=max; the default applies when absent).
const LISTS: [(&str, u32); 4] =
    [("/admin/v1/apps", 200), ("/v1/grants", 200), ("/v1/webhook-deliveries", 200), ("/v1/audit", 1000)];

async fn page_limits_outside_the_documented_range_are_refused_on_every_list_endpoint(vault: TestVault) {
    let (_, key) = vault.new_app("first").await;
    vault.new_app("second").await;
    for (path, max) in LISTS {
        let token = if path.starts_with("/admin") { crate::support::ADMIN_TOKEN } else { key.as_str() };
        for limit in [0, max + 1, 100_000] {
            let (status, body) = vault.call(Method::GET, &format!("{path}?limit={limit}"), Some(token), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}?limit={limit}: {body}");
            assert_eq!(assert_error_shape(status, &body), "invalid_limit", "{path}?limit={limit}");
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(&format!("between 1 and {max}")), "{path}: {message}");
        }
        for limit in [1, max] {
            let (status, body) = vault.call(Method::GET, &format!("{path}?limit={limit}"), Some(token), None).await;
            assert_eq!(status, StatusCode::OK, "{path}?limit={limit}: {body}");
            assert!(body["data"].as_array().unwrap().len() <= limit as usize, "{path}: {body}");
        }
    }
    // limit=1 really is one row, with a cursor to the next.
    let (_, page) = vault.admin(Method::GET, "/apps?limit=1", None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert!(page["next_cursor"].is_string(), "{page}");

    // The export is not paginated: `limit` and `after` are refused, not ignored.
    for query in ["limit=10", "limit=0", "after=aud_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e"] {
        let (status, body) = vault.call(Method::GET, &format!("/v1/audit/export?{query}"), Some(&key), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(assert_error_shape(status, &body), "invalid_query", "{query}");
    }
}

/// Item 4: the master key file's permissions and the modes of the database files, with the real binary.
mod file_modes {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::process::{Command, Output};

    use crate::process::{spawn, terminate, tokenvault};

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn serve(data_dir: &Path) -> Command {
        let mut command = tokenvault();
        command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
        command
    }

    /// Runs a command that is expected to exit by itself; one still running after 60 s is killed
    /// (so a start that should have been refused fails the test instead of hanging it).
    fn run_to_exit(mut command: Command) -> Output {
        let child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let pid = child.id() as i32;
        let (exited, watchdog) = std::sync::mpsc::channel::<()>();
        let guard = std::thread::spawn(move || {
            if watchdog.recv_timeout(std::time::Duration::from_secs(60)).is_err() {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        let output = child.wait_with_output().unwrap();
        let _ = exited.send(());
        guard.join().unwrap();
        output
    }

    fn assert_refused(output: &Output, path: &Path, shown_mode: &str) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "started with an insecure key file: {stderr}");
        assert!(stderr.contains(&path.display().to_string()), "names the file: {stderr}");
        assert!(stderr.contains(shown_mode), "shows the mode: {stderr}");
        assert!(stderr.contains(&format!("chmod 600 {}", path.display())), "gives the fix: {stderr}");
        assert!(stderr.contains("--allow-insecure-master-key-file"), "names the override: {stderr}");
    }

    #[test]
    fn a_master_key_file_group_or_others_can_read_is_refused_at_start_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        // First start: the generated key file is 0600 and accepted.
        let output = run_to_exit({
            let mut c = tokenvault();
            c.args(["apps", "list", "--data-dir"]).arg(&data_dir);
            c
        });
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let key_file = data_dir.join("master.key");
        assert_eq!(mode(&key_file), 0o600);
        let key_text = std::fs::read_to_string(&key_file).unwrap();

        // The generated key file, made readable by others: `serve` refuses to start.
        chmod(&key_file, 0o644);
        let refused = run_to_exit(serve(&data_dir));
        assert_refused(&refused, &key_file, "0644");
        assert!(!String::from_utf8_lossy(&refused.stderr).contains(key_text.trim()), "the key is never printed");

        // With the flag it starts (and says why it accepted the file).
        let mut command = serve(&data_dir);
        command.arg("--allow-insecure-master-key-file");
        let (mut child, _, startup, _) = spawn(command);
        assert!(startup.iter().any(|l| l.contains("accessible by group or others")), "{startup:?}");
        assert!(terminate(&mut child).success());
        // The environment variable works the same, for every command that reads the key.
        let mut command = tokenvault();
        command
            .args(["apps", "list", "--data-dir"])
            .arg(&data_dir)
            .env("TOKENVAULT_ALLOW_INSECURE_MASTER_KEY_FILE", "true");
        assert!(run_to_exit(command).status.success());

        // An explicit --master-key-file is checked the same way, any group or other bit counts.
        let explicit = dir.path().join("elsewhere.key");
        std::fs::write(&explicit, &key_text).unwrap();
        for insecure in [0o640, 0o604, 0o620, 0o601] {
            chmod(&explicit, insecure);
            let mut command = serve(&data_dir);
            command.arg("--master-key-file").arg(&explicit);
            assert_refused(&run_to_exit(command), &explicit, &format!("{insecure:04o}"));
        }
        // After the fix the message gives, it starts without any flag.
        chmod(&explicit, 0o600);
        chmod(&key_file, 0o400);
        let mut command = serve(&data_dir);
        command.arg("--master-key-file").arg(&explicit);
        let (mut child, _, _, _) = spawn(command);
        assert!(terminate(&mut child).success());
    }

    #[tokio::test]
    async fn the_embedded_database_and_its_wal_and_shm_files_are_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut command = serve(&data_dir);
        command.env("TOKENVAULT_ADMIN_TOKEN", crate::support::ADMIN_TOKEN);
        let (mut child, base, _, _) = spawn(command);
        // A write, so the WAL is in use while we look.
        let response = reqwest::Client::new()
            .post(format!("{base}/admin/v1/apps"))
            .bearer_auth(crate::support::ADMIN_TOKEN)
            .json(&serde_json::json!({ "name": "modes" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(mode(&data_dir), 0o700);
        for file in ["tokenvault.db", "tokenvault.db-wal", "tokenvault.db-shm", "master.key"] {
            assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
        }
        assert!(terminate(&mut child).success());
    }
}

/// Item 5: the connect token, the OAuth `code` and `state`, the flow cookie and values quoted by
/// rejections never reach the logs, at any level: the real binary at `RUST_LOG=trace`.
mod secrets_in_urls {
    use reqwest::StatusCode;
    use serde_json::{Value, json};
    use tokenvault_fakes::{ClientRegistration, Fakes, Provider};

    use crate::connect_env::{RETURN_ORIGIN, RETURN_URL, query_of};
    use crate::process::{spawn, terminate, tokenvault};
    use crate::support::ADMIN_TOKEN;

    async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Option<String>, Vec<String>, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        let cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect();
        let text = response.text().await.unwrap();
        (status, location, cookies, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    #[tokio::test]
    async fn a_connect_flow_at_trace_level_logs_no_connect_token_code_state_or_cookie() {
        let fakes = Fakes::start().await.expect("fakes start");
        let dir = tempfile::tempdir().unwrap();
        let providers = dir.path().join("providers");
        std::fs::create_dir_all(&providers).unwrap();
        crate::connect_env::catalog_overrides(&fakes, &providers, None);
        let mut command = tokenvault();
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--allow-private-egress", "--refresh-interval-seconds", "0"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--providers-dir")
            .arg(&providers)
            .env("TOKENVAULT_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "trace");
        let (mut child, base, startup, logs) = spawn(command);
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let url = |path: &str| format!("{base}{path}");

        let (_, _, _, app) =
            send(http.post(url("/admin/v1/apps")).bearer_auth(ADMIN_TOKEN).json(&json!({ "name": "logs" }))).await;
        let app_id = app["id"].as_str().unwrap();
        let (_, _, _, minted) = send(
            http.post(url(&format!("/admin/v1/apps/{app_id}/api-keys")))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({ "scopes": ["*"] })),
        )
        .await;
        let key = minted["key"].as_str().unwrap().to_owned();
        let (status, _, _, _) =
            send(http.patch(url("/v1/app")).bearer_auth(&key).json(&json!({ "return_origins": [RETURN_ORIGIN] })))
                .await;
        assert_eq!(status, StatusCode::OK);
        let config_body =
            json!({ "provider": "zoom", "client_id": "zoom-client", "client_secret": "zoom-secret-logs-1" });
        let (status, _, _, config) =
            send(http.post(url("/v1/provider-configs")).bearer_auth(&key).json(&config_body)).await;
        assert_eq!(status, StatusCode::CREATED, "{config}");
        fakes.control().register_client(
            Provider::Zoom,
            ClientRegistration {
                client_id: "zoom-client".into(),
                client_secret: "zoom-secret-logs-1".into(),
                redirect_uris: vec![config["redirect_uri"].as_str().unwrap().to_owned()],
                scopes: vec!["user:read:user".into(), "meeting:read:meeting".into()],
                install_uri: None,
            },
        );

        let session = json!({ "end_user_id": "user-logs", "providers": ["zoom"], "return_url": RETURN_URL });
        let (status, _, _, created) =
            send(http.post(url("/v1/connect-sessions")).bearer_auth(&key).json(&session)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let token = created["token"].as_str().unwrap().to_owned();
        let connect_url = created["connect_url"].as_str().unwrap().to_owned();
        assert!(connect_url.contains(&token), "{connect_url}");

        // The browser: the hosted page, its Continue button, the provider (auto-consent), the
        // callback.
        let (status, _, _, _) = send(http.get(&connect_url)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, authorize, cookies, _) = send(http.get(format!("{connect_url}?provider=zoom"))).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let authorize = authorize.unwrap();
        let state = query_of(&authorize)["state"].clone();
        let (_, callback, _, _) = send(http.get(&authorize)).await;
        let callback = callback.expect("the provider redirects to the callback");
        let code = query_of(&callback)["code"].clone();
        assert_eq!(query_of(&callback)["state"], state);
        let (status, done, _, _) = send(http.get(&callback).header("cookie", cookies.join("; "))).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(done.unwrap().contains("status=succeeded"));
        // Failures log too: the used link again, the link with more appended, the callback replayed.
        let (status, _, _, _) = send(http.get(format!("{connect_url}?provider=zoom"))).await;
        assert!(status.is_client_error(), "{status}");
        let (status, _, _, _) = send(http.get(format!("{connect_url}/extra"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _, _) = send(http.get(&callback).header("cookie", cookies.join("; "))).await;
        assert!(status.is_client_error(), "{status}");
        // serde quotes a value in a wrongly typed field: neither the answer nor any log line shows it.
        let misplaced = json!({ "end_user_id": "u", "return_url": RETURN_URL, "ttl_seconds": "misplaced-secret-7c1" });
        let (status, _, _, body) =
            send(http.post(url("/v1/connect-sessions")).bearer_auth(&key).json(&misplaced)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(!body.to_string().contains("misplaced-secret-7c1"), "{body}");

        assert!(terminate(&mut child).success());
        let all: Vec<String> = startup.into_iter().chain(logs.try_iter()).collect();
        let all = all.join("\n");
        assert!(all.contains("TRACE"), "trace level was on: {all:.2000}");
        assert!(all.contains("/connect/[redacted]"), "the connect requests were logged");
        assert!(all.contains("/connect/callback/"), "the callback requests were logged");
        let cookie_values: Vec<String> =
            // An empty value is a cookie being cleared (the popup mark), not a secret.
            cookies.iter().filter_map(|c| c.split_once('=')).map(|(_, v)| v.to_owned()).filter(|v| !v.is_empty()).collect();
        assert!(!cookie_values.is_empty() && !code.is_empty() && !state.is_empty());
        let secrets =
            [token.as_str(), code.as_str(), state.as_str(), "misplaced-secret-7c1", "zoom-secret-logs-1", &key]
                .into_iter()
                .chain(cookie_values.iter().map(String::as_str));
        for secret in secrets {
            assert!(secret.len() >= 8, "a real value: {secret}");
            if let Some(at) = all.find(secret) {
                let line = all[..at].rfind('\n').map_or(0, |n| n + 1);
                panic!("a secret reached the logs: {}", &all[line..(at + secret.len() + 80).min(all.len())]);
            }
        }
    }
}

/// Item 2: every 4xx has the JSON error body: the vault's own edge limits (431, 414), axum's
/// rejections, the router's answers; and what hyper still answers itself, bodyless, is pinned.
mod error_bodies {
    use reqwest::{Method, StatusCode};
    use serde_json::Value;
    use tokenvault_testkit::Backend;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::support::{TestVault, assert_error_shape};

    struct RawResponse {
        status: u16,
        head: String,
        body: Vec<u8>,
    }

    /// Sends `request` as is on a new connection and reads the answer until the server closes it.
    async fn raw(vault: &TestVault, request: &[u8]) -> RawResponse {
        let mut stream = tokio::net::TcpStream::connect(vault.base.trim_start_matches("http://")).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.unwrap();
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        RawResponse { status, head, body: bytes[end..].to_vec() }
    }

    /// A `GET path` with `headers` (each `name: value`), closing the connection after the answer.
    fn get(path: &str, headers: &[String]) -> Vec<u8> {
        let mut request = format!("GET {path} HTTP/1.1\r\nhost: vault.test\r\nconnection: close\r\n");
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        request.into_bytes()
    }

    fn assert_json_error(response: &RawResponse, status: u16, code: &str) {
        assert_eq!(response.status, status, "{}", response.head);
        assert!(response.head.to_ascii_lowercase().contains("content-type: application/json"), "{}", response.head);
        assert!(response.head.to_ascii_lowercase().contains("x-request-id: "), "{}", response.head);
        let body: Value = serde_json::from_slice(&response.body).expect("a JSON body");
        let status = StatusCode::from_u16(status).unwrap();
        assert_eq!(assert_error_shape(status, &body), code, "{body}");
    }

    #[tokio::test]
    async fn oversized_headers_and_uris_get_the_json_error_shape_up_to_the_servers_own_ceiling() {
        let Some(vault) = TestVault::start(Backend::Sqlite).await else { return };
        let big =
            |n: usize, size: usize| (0..n).map(|i| format!("x-big-{i}: {}", "v".repeat(size))).collect::<Vec<_>>();
        let many = |n: usize| (0..n).map(|i| format!("x-many-{i}: v")).collect::<Vec<_>>();

        // Within the limits (32 KiB of header lines, 100 header lines, 8 KiB of URI): served.
        for headers in [big(1, 30 * 1024), many(95)] {
            assert_eq!(raw(&vault, &get("/healthz", &headers)).await.status, 200);
        }
        assert_eq!(raw(&vault, &get(&format!("/healthz?pad={}", "p".repeat(8000)), &[])).await.status, 200);

        // Over them: the vault's JSON answer, with its request id.
        for (what, headers) in
            [("100 KiB of headers", big(4, 25 * 1024)), ("200 headers", many(200)), ("101 headers", many(99))]
        {
            let response = raw(&vault, &get("/healthz", &headers)).await;
            assert_json_error(&response, 431, "request_headers_too_large");
            let body: Value = serde_json::from_slice(&response.body).unwrap();
            assert!(body["message"].as_str().unwrap().contains("32768"), "{what}: {body}");
        }
        let long = format!("/healthz?pad={}", "p".repeat(16 * 1024));
        assert_json_error(&raw(&vault, &get(&long, &[])).await, 414, "uri_too_long");
        let long = format!("/v1/proxy/grt_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e/{}", "a".repeat(9000));
        assert_json_error(&raw(&vault, &get(&long, &[])).await, 414, "uri_too_long");

        // Past hyper's own ceiling (500 header lines, a 64 KiB URI) and for requests that do not
        // parse as HTTP, hyper answers before any request exists: status only, no body. This is
        // what docs/http-api.md says; the test keeps the two in step.
        let bodyless = [
            (get("/healthz", &many(600)), 431),
            (get(&format!("/healthz?pad={}", "p".repeat(70 * 1024)), &[]), 414),
            (b"GARBAGE\r\n\r\n".to_vec(), 400),
            (b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-bad: a\x01b\r\n\r\n".to_vec(), 400),
            (b"GET /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: nope\r\n\r\n".to_vec(), 400),
        ];
        for (request, status) in bodyless {
            let response = raw(&vault, &request).await;
            assert_eq!(response.status, status, "{}", response.head);
            assert!(response.body.is_empty(), "{}", response.head);
        }
    }

    /// (method, path, with the API key?, content type, body, expected status, expected code)
    type Case<'a> = (Method, String, bool, Option<&'a str>, String, u16, &'a str);

    #[tokio::test]
    async fn every_rejection_of_the_router_and_the_extractors_has_the_json_error_shape() {
        let Some(vault) = TestVault::start(Backend::Sqlite).await else { return };
        let (_, key) = vault.new_app("shapes").await;
        let oversized = "x".repeat(vault.settings.max_body_bytes + 1);
        let json = "application/json";
        let cases: Vec<Case> = vec![
            (
                Method::POST,
                "/v1/connect-sessions".into(),
                true,
                Some(json),
                "{\"end_user_id\": ".into(),
                400,
                "malformed_json",
            ),
            (Method::POST, "/v1/connect-sessions".into(), true, Some(json), "[]".into(), 400, "body_not_object"),
            (Method::POST, "/v1/connect-sessions".into(), true, Some(json), "{\"x\": 1}".into(), 422, "invalid_body"),
            (
                Method::POST,
                "/v1/connect-sessions".into(),
                true,
                Some("text/plain"),
                "{}".into(),
                415,
                "unsupported_media_type",
            ),
            (Method::POST, "/v1/connect-sessions".into(), true, None, "{}".into(), 415, "unsupported_media_type"),
            (
                Method::POST,
                "/v1/connect-sessions".into(),
                true,
                Some(json),
                format!("{{\"end_user_id\": \"{oversized}\"}}"),
                413,
                "payload_too_large",
            ),
            (
                Method::POST,
                "/webhooks/zoom/pcf_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e".into(),
                false,
                Some(json),
                oversized.clone(),
                413,
                "payload_too_large",
            ),
            (Method::GET, "/v1/grants/%FF%FE".into(), true, None, String::new(), 400, "bad_request"),
            (Method::GET, "/v1/grants?limit=lots".into(), true, None, String::new(), 400, "invalid_limit"),
            (Method::GET, "/v1/grants?colour=red".into(), true, None, String::new(), 400, "invalid_query"),
            (Method::GET, "/v1/grants?no_such_filter=1".into(), true, None, String::new(), 400, "invalid_query"),
            (Method::GET, "/v1/grants?limit=0".into(), true, None, String::new(), 400, "invalid_limit"),
            (Method::GET, "/v1/grants/not-an-id".into(), true, None, String::new(), 400, "invalid_id"),
            (Method::DELETE, "/healthz".into(), false, None, String::new(), 405, "method_not_allowed"),
            (Method::PATCH, "/v1/grants".into(), true, None, String::new(), 405, "method_not_allowed"),
            (Method::GET, "/no/such/route".into(), false, None, String::new(), 404, "not_found"),
            (Method::GET, "/v1".into(), false, None, String::new(), 404, "not_found"),
            (Method::GET, "/v1/grants".into(), false, None, String::new(), 401, "missing_credentials"),
        ];
        for (method, path, with_key, content_type, body, status, code) in cases {
            let mut request = vault.http.request(method.clone(), vault.url(&path));
            if with_key {
                request = request.bearer_auth(&key);
            }
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.body(body).send().await.unwrap();
            let got = response.status();
            assert!(response.headers().get("x-request-id").is_some(), "{method} {path}");
            let content = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            let text = response.text().await.unwrap();
            assert_eq!(got.as_u16(), status, "{method} {path}: {text}");
            assert_eq!(content.as_deref(), Some("application/json"), "{method} {path}");
            let json: Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
            assert_eq!(assert_error_shape(got, &json), code, "{method} {path}");
        }
        let (status, body) = vault.admin(Method::GET, "/apps?after=not-an-id", None).await;
        assert_eq!((status, assert_error_shape(status, &body).as_str()), (StatusCode::BAD_REQUEST, "invalid_id"));
    }
}
