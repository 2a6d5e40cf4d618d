//! The real-browser suite: Debian's Chromium, driven by playwright-core from Node
//! (`tests/browser/suite.mjs`), against a vault wired to the fake providers. The suite runs its
//! named steps in order (the portal's sign-in page, a wrong password, sign-in, a forged form,
//! sign-out), fails a step on any console error or CSP violation, leaves its screenshots in
//! `target/browser-artifacts`, and prints one JSON line with its verdict.
//!
//! It needs `TOKENVAULT_TEST_BROWSER_NODE` (a Node, 20+), `TOKENVAULT_TEST_CHROMIUM` (a Chromium)
//! and `npm ci` run in `tests/browser`. Without them the test skips loudly, unless `CI` is set,
//! which makes it fail (`.ci/run` installs Chromium, runs `npm ci` and sets both variables).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_fakes::{Endpoint, Provider};
use tokenvault_testkit::Backend;

use crate::connect_env::ConnectEnv;

const SUITE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
const ARTIFACTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/browser-artifacts");
const OPERATOR_EMAIL: &str = "operator@example.com";
const OPERATOR_PASSWORD: &str = "correct horse battery staple";
/// The whole suite, browser launch included; each step has its own 20 s timeout inside (raise this
/// as steps are added: launch, up to 60 s, plus 20 s a step must fit).
const SUITE_TIMEOUT: Duration = Duration::from_secs(420);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

fn skip(reason: &str) -> Option<Tools> {
    // Straight to stderr: a skip must never be silent.
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: the browser suite needs {reason} ***\n");
    None
}

struct Tools {
    node: String,
    chromium: String,
}

/// Node, Chromium and the suite's `node_modules`, or a loud skip (a failure under CI).
fn tools() -> Option<Tools> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (node, chromium) = match (var("TOKENVAULT_TEST_BROWSER_NODE"), var("TOKENVAULT_TEST_CHROMIUM")) {
        (Some(node), Some(chromium)) => (node, chromium),
        _ if in_ci() => panic!(
            "CI needs TOKENVAULT_TEST_BROWSER_NODE (a Node 20+) and TOKENVAULT_TEST_CHROMIUM (a Chromium) for the \
             browser suite (.ci/run sets both)"
        ),
        _ => {
            return skip(
                "TOKENVAULT_TEST_BROWSER_NODE (a Node 20+) and TOKENVAULT_TEST_CHROMIUM (e.g. /usr/bin/chromium)",
            );
        }
    };
    if !Path::new(SUITE_DIR).join("node_modules/playwright-core").is_dir() {
        if in_ci() {
            panic!(
                "the browser suite's dependencies are missing: {SUITE_DIR}/node_modules/playwright-core; .ci/run runs \
                 `npm ci --prefix crates/tokenvault/tests/browser` before the tests"
            );
        }
        return skip("its dependencies: run `npm ci --prefix crates/tokenvault/tests/browser`");
    }
    Some(Tools { node, chromium })
}

/// `target/browser-artifacts`, emptied: only this run's screenshots are in it afterwards.
fn artifacts_dir() -> PathBuf {
    let dir = PathBuf::from(ARTIFACTS);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("the old browser artifacts are removed");
    }
    std::fs::create_dir_all(&dir).expect("the browser artifacts directory is created");
    dir.canonicalize().unwrap()
}

#[tokio::test]
async fn the_portal_connect_ui_and_wallet_work_in_chromium() {
    let Some(tools) = tools() else { return };
    let Some(env) = ConnectEnv::start(Backend::Sqlite).await else { return };
    let operator = json!({ "email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD, "role": "owner" });
    let (status, created) = env.vault.admin(Method::POST, "/operators", Some(operator)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    // Another app with a grant of its own: its URLs must not open under the suite's app.
    env.configure_zoom().await;
    let other_grant = env.connect_ok("someone-else", "zoom").await;
    let (_, other_app) = env.api(Method::GET, "/v1/app", None).await;
    let revokes_before = env.fakes.control().calls(Provider::Zoom, Endpoint::Revoke);

    let artifacts = artifacts_dir();
    let config = json!({
        "other_app_id": other_app["id"],
        "other_grant_id": other_grant,
        "vault": env.vault.base,
        "fakes_control": env.fakes.control_url(),
        "email": OPERATOR_EMAIL,
        "password": OPERATOR_PASSWORD,
        "artifacts": artifacts,
        "chromium": tools.chromium,
    });
    let started = Instant::now();
    let child = tokio::process::Command::new(&tools.node)
        .arg(Path::new(SUITE_DIR).join("suite.mjs"))
        .arg(config.to_string())
        .current_dir(SUITE_DIR)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} runs: {e}", tools.node));
    let output = tokio::time::timeout(SUITE_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the browser suite did not finish within {} s", SUITE_TIMEOUT.as_secs()))
        .expect("the browser suite's output is read");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let verdict: Value = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!("the browser suite printed no verdict ({}):\n{stdout}\n--- stderr ---\n{stderr}", output.status)
        });
    assert!(
        verdict["ok"] == true && output.status.success(),
        "the browser suite failed at step {} ({}): {}\n--- stderr ---\n{stderr}\nscreenshots: {}",
        verdict["failed_step"],
        output.status,
        verdict["error"].as_str().unwrap_or_default(),
        artifacts.display(),
    );
    // What the suite saw at the fake, seen from here too: the wallet's disconnect revoked at Zoom,
    // and the other app's grant is untouched.
    assert!(env.fakes.control().calls(Provider::Zoom, Endpoint::Revoke) > revokes_before, "revoked at Zoom");
    assert_eq!(env.grant(&other_grant).await["status"], "active");
    println!(
        "browser suite: {} steps in {:.1} s ({}), screenshots in {}: {}",
        verdict["steps"].as_array().map_or(0, Vec::len),
        elapsed.as_secs_f64(),
        verdict["steps"],
        artifacts.display(),
        verdict["screenshots"],
    );
}
