//! Issue 2: data-key rotation re-seals every stored secret while the vault keeps serving.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::connect_env::ConnectEnv;
use crate::connect_tests;

connect_tests!(rotation_reseals_everything_while_serving, a_second_rotation_retires_the_previous_key);

async fn key_states(env: &ConnectEnv) -> Vec<(u64, String, u64)> {
    let (status, keys) = env.vault.admin(Method::GET, "/keys", None).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k: &Value| {
            (k["id"].as_u64().unwrap(), k["state"].as_str().unwrap().to_owned(), k["sealed_values"].as_u64().unwrap())
        })
        .collect()
}

async fn rotation_reseals_everything_while_serving(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    env.configure_zoom().await;
    env.connect_ok("user-1", "dialpad-production").await;
    env.connect_ok("user-1", "zoom").await;
    let before = key_states(&env).await;
    assert_eq!(before.len(), 1);
    let (_, state, sealed) = &before[0];
    assert_eq!(state, "active");
    // 2 client secrets + 2 access tokens + 2 refresh tokens.
    assert_eq!(*sealed, 6, "{before:?}");

    let resumed = env.vault.vault.start_key_rotation().await.unwrap();
    assert!(!resumed);
    // Mid-rotation: values sealed by the old key still open (the client secret is used here),
    // and new values are sealed by the new key.
    env.connect_ok("user-2", "dialpad-production").await;
    let mid = key_states(&env).await;
    assert_eq!(mid, vec![(1, "retiring".into(), 6), (2, "active".into(), 2)], "{mid:?}");

    // Finish while connections keep happening.
    let (report, grant) = tokio::join!(env.vault.vault.finish_key_rotation(resumed), env.connect_ok("user-3", "zoom"));
    let report = report.unwrap();
    assert_eq!(report.new_key_id, 2);
    assert_eq!(report.retired_key_ids, vec![1]);
    assert!(report.resealed >= 6);
    let after = key_states(&env).await;
    assert_eq!(after[0].1, "retired");
    assert_eq!(after[0].2, 0, "nothing is sealed by the retired key: {after:?}");
    assert_eq!(after[1], (2, "active".into(), 10));
    // Everything still opens after the old key's material is gone.
    env.connect_ok("user-4", "dialpad-production").await;
    assert_eq!(env.grant(&grant).await["status"], "active");
}

async fn a_second_rotation_retires_the_previous_key(env: ConnectEnv) {
    env.configure_aircall().await;
    env.connect_ok("user-1", "aircall").await;
    env.vault.vault.rotate_keys().await.unwrap();
    let report = env.vault.vault.rotate_keys().await.unwrap();
    assert_eq!(report.new_key_id, 3);
    assert_eq!(report.retired_key_ids, vec![2]);
    let states = key_states(&env).await;
    assert_eq!(
        states.iter().map(|(id, state, _)| (*id, state.as_str())).collect::<Vec<_>>(),
        [(1, "retired"), (2, "retired"), (3, "active")]
    );
    env.connect_ok("user-2", "aircall").await;
}
