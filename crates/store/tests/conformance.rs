//! The store conformance suite: every case runs against SQLite and against PostgreSQL, each in a
//! fresh database of its own.

use tokenvault_store::{
    AdminTokenRecord, ApiKeyRecord, AppRecord, AuditFilter, AuditRecord, ConnectSessionRecord, EncryptionKeyRecord,
    GrantFilter, GrantRecord, KeyState, OAuthFlowRecord, ProviderConfigRecord, SEALED_COLUMNS, SessionOutcome, Store,
    StoreError,
};
use tokenvault_testkit::{Backend, TestDatabase};

/// Generates `sqlite::<case>` and `postgres::<case>` tests for each case function.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $case() { super::run(tokenvault_testkit::Backend::Sqlite, super::$case).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $case() { super::run(tokenvault_testkit::Backend::Postgres, super::$case).await })*
        }
    };
}

conformance!(
    migrations_are_idempotent_and_ready,
    apps_round_trip_and_paginate,
    duplicate_app_id_is_a_conflict,
    deleting_an_app_cascades_to_its_keys,
    api_keys_revoke_is_scoped_and_idempotent,
    api_key_for_missing_app_is_not_found,
    touch_records_last_use_at_most_once_a_minute,
    admin_tokens_round_trip,
    key_rotation_records_keep_one_active_key,
    retiring_keys_erases_material,
    provider_configs_are_scoped_and_keys_unique,
    session_transitions_are_compare_and_swap,
    oauth_flow_state_is_consumed_once,
    grants_upsert_by_id_and_identity_is_unique,
    sealed_values_page_and_compare_and_swap,
    audit_purge_deletes_only_rows_older_than_the_cutoff,
);

async fn run<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    case(store.clone()).await;
    store.close().await;
}

fn app(id: &str) -> AppRecord {
    AppRecord {
        id: id.into(),
        name: format!("name of {id}"),
        created_at: 1_700_000_000_000,
        return_origins: vec!["https://a.example".into()],
        install_return_url: None,
    }
}

fn api_key(id: &str, app_id: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        app_id: app_id.into(),
        name: "k".into(),
        secret_hash: vec![1, 2, 3, 4],
        created_at: 1,
        last_used_at: None,
        revoked_at: None,
    }
}

fn key_record(id: u32) -> EncryptionKeyRecord {
    EncryptionKeyRecord {
        id,
        wrapped_key: Some(vec![id as u8; 60]),
        master_fingerprint: "f00d".into(),
        state: KeyState::Active,
        created_at: 1,
        retired_at: None,
    }
}

async fn migrations_are_idempotent_and_ready(store: Store) {
    store.migrate().await.expect("second migrate is a no-op");
    assert!(store.is_ready().await);
}

async fn apps_round_trip_and_paginate(store: Store) {
    for i in 0..5 {
        store.insert_app(&app(&format!("app_{i}"))).await.unwrap();
    }
    assert_eq!(store.get_app("app_3").await.unwrap(), app("app_3"));
    let first = store.list_apps(None, 2).await.unwrap();
    assert_eq!(first.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["app_0", "app_1"]);
    let next = store.list_apps(Some("app_1"), 10).await.unwrap();
    assert_eq!(next.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["app_2", "app_3", "app_4"]);
    assert!(matches!(store.get_app("app_9").await, Err(StoreError::NotFound)));
}

async fn duplicate_app_id_is_a_conflict(store: Store) {
    store.insert_app(&app("app_a")).await.unwrap();
    assert!(matches!(store.insert_app(&app("app_a")).await, Err(StoreError::Conflict(_))));
}

async fn deleting_an_app_cascades_to_its_keys(store: Store) {
    store.insert_app(&app("app_a")).await.unwrap();
    store.insert_api_key(&api_key("key_1", "app_a")).await.unwrap();
    store.delete_app("app_a").await.unwrap();
    assert!(matches!(store.find_api_key("key_1").await, Err(StoreError::NotFound)));
    assert!(matches!(store.delete_app("app_a").await, Err(StoreError::NotFound)));
}

async fn api_keys_revoke_is_scoped_and_idempotent(store: Store) {
    store.insert_app(&app("app_a")).await.unwrap();
    store.insert_app(&app("app_b")).await.unwrap();
    store.insert_api_key(&api_key("key_1", "app_a")).await.unwrap();
    assert!(matches!(store.revoke_api_key("app_b", "key_1", 10).await, Err(StoreError::NotFound)));
    assert_eq!(store.find_api_key("key_1").await.unwrap().revoked_at, None);
    store.revoke_api_key("app_a", "key_1", 10).await.unwrap();
    store.revoke_api_key("app_a", "key_1", 20).await.unwrap();
    let key = store.find_api_key("key_1").await.unwrap();
    assert_eq!(key.revoked_at, Some(10));
    assert_eq!(key.secret_hash, vec![1, 2, 3, 4]);
    assert_eq!(store.list_api_keys("app_a").await.unwrap().len(), 1);
    assert!(store.list_api_keys("app_b").await.unwrap().is_empty());
}

async fn api_key_for_missing_app_is_not_found(store: Store) {
    assert!(matches!(store.insert_api_key(&api_key("key_1", "app_missing")).await, Err(StoreError::NotFound)));
}

async fn touch_records_last_use_at_most_once_a_minute(store: Store) {
    store.insert_app(&app("app_a")).await.unwrap();
    store.insert_api_key(&api_key("key_1", "app_a")).await.unwrap();
    store.touch_api_key("key_1", 100_000).await.unwrap();
    store.touch_api_key("key_1", 130_000).await.unwrap();
    assert_eq!(store.find_api_key("key_1").await.unwrap().last_used_at, Some(100_000));
    store.touch_api_key("key_1", 161_000).await.unwrap();
    assert_eq!(store.find_api_key("key_1").await.unwrap().last_used_at, Some(161_000));
}

async fn admin_tokens_round_trip(store: Store) {
    let token = AdminTokenRecord {
        id: "adm_1".into(),
        name: "ops".into(),
        secret_hash: vec![9; 32],
        created_at: 5,
        revoked_at: None,
    };
    store.insert_admin_token(&token).await.unwrap();
    assert_eq!(store.find_admin_token("adm_1").await.unwrap(), token);
    store.revoke_admin_token("adm_1", 7).await.unwrap();
    assert_eq!(store.find_admin_token("adm_1").await.unwrap().revoked_at, Some(7));
    assert_eq!(store.list_admin_tokens().await.unwrap().len(), 1);
    assert!(matches!(store.revoke_admin_token("adm_2", 7).await, Err(StoreError::NotFound)));
}

async fn key_rotation_records_keep_one_active_key(store: Store) {
    store.activate_new_key(&key_record(1)).await.unwrap();
    store.activate_new_key(&key_record(2)).await.unwrap();
    let keys = store.list_encryption_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| (k.id, k.state)).collect::<Vec<_>>(),
        [(1, KeyState::Retiring), (2, KeyState::Active)]
    );
    // Reusing an id fails as a whole: key 2 stays the active key.
    assert!(matches!(store.activate_new_key(&key_record(2)).await, Err(StoreError::Conflict(_))));
    let keys = store.list_encryption_keys().await.unwrap();
    assert_eq!(keys.iter().filter(|k| k.state == KeyState::Active).map(|k| k.id).collect::<Vec<_>>(), [2]);
}

async fn retiring_keys_erases_material(store: Store) {
    store.activate_new_key(&key_record(1)).await.unwrap();
    store.activate_new_key(&key_record(2)).await.unwrap();
    store.retire_keys(&[1, 2], 99).await.unwrap();
    let keys = store.list_encryption_keys().await.unwrap();
    assert_eq!(keys[0].state, KeyState::Retired);
    assert_eq!(keys[0].wrapped_key, None);
    assert_eq!(keys[0].retired_at, Some(99));
    // The active key is never retired by this call.
    assert_eq!(keys[1].state, KeyState::Active);
    assert!(keys[1].wrapped_key.is_some());
}

fn config(id: &str, app_id: &str, key: &str) -> ProviderConfigRecord {
    ProviderConfigRecord {
        id: id.into(),
        app_id: app_id.into(),
        key: key.into(),
        provider: "dialpad".into(),
        environment: "production".into(),
        client_id: "cid".into(),
        client_secret: vec![7; 40],
        scopes: vec!["calls:list".into(), "offline_access".into()],
        custom_endpoints: None,
        redirect_uri: format!("https://vault.example/connect/callback/{id}"),
        created_at: 1,
        updated_at: 1,
        webhook_secret: Some(vec![5; 40]),
        provider_webhook_events: Some(vec!["call.created".into()]),
    }
}

fn grant(id: &str, end_user: &str, account: &str) -> GrantRecord {
    GrantRecord {
        id: id.into(),
        app_id: "app_a".into(),
        provider_config_id: "pcf_1".into(),
        provider: "zoom".into(),
        environment: "production".into(),
        end_user_id: end_user.into(),
        account_key: account.into(),
        account_id: account.into(),
        account_user_id: None,
        account_name: Some("Zoe".into()),
        account_email: None,
        scopes: "a b".into(),
        access_token: Some(vec![1; 30]),
        refresh_token: Some(vec![2; 30]),
        token_type: "bearer".into(),
        expires_at: Some(5_000),
        api_base_url: Some("https://api.zoom.us".into()),
        status: "active".into(),
        status_reason: None,
        connected_at: 1,
        refreshed_at: None,
        created_at: 1,
        updated_at: 1,
        next_refresh_at: Some(4_000),
        refresh_failures: 0,
        retry_at: None,
        last_error: None,
        revoked_at: None,
        refresh_lease_until: None,
    }
}

async fn with_app_and_config(store: &Store) {
    store.insert_app(&app("app_a")).await.unwrap();
    store.insert_app(&app("app_b")).await.unwrap();
    store.insert_provider_config(&config("pcf_1", "app_a", "zoom")).await.unwrap();
}

async fn provider_configs_are_scoped_and_keys_unique(store: Store) {
    with_app_and_config(&store).await;
    assert_eq!(store.get_provider_config("app_a", "pcf_1").await.unwrap(), config("pcf_1", "app_a", "zoom"));
    assert!(matches!(store.get_provider_config("app_b", "pcf_1").await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.insert_provider_config(&config("pcf_2", "app_a", "zoom")).await,
        Err(StoreError::Conflict(_))
    ));
    store.insert_provider_config(&config("pcf_3", "app_b", "zoom")).await.unwrap();
    let mut changed = config("pcf_1", "app_a", "zoom");
    changed.client_id = "new".into();
    changed.app_id = "app_b".into();
    assert!(
        matches!(store.update_provider_config(&changed).await, Err(StoreError::NotFound)),
        "another app cannot update it"
    );
    changed.app_id = "app_a".into();
    store.update_provider_config(&changed).await.unwrap();
    assert_eq!(store.find_provider_config("pcf_1").await.unwrap().client_id, "new");
    assert_eq!(store.list_provider_configs("app_a").await.unwrap().len(), 1);
    assert!(matches!(store.delete_provider_config("app_b", "pcf_1").await, Err(StoreError::NotFound)));
    store.delete_provider_config("app_a", "pcf_1").await.unwrap();
}

async fn session_transitions_are_compare_and_swap(store: Store) {
    with_app_and_config(&store).await;
    let session = ConnectSessionRecord {
        id: "cns_1".into(),
        app_id: "app_a".into(),
        token_hash: vec![3; 32],
        end_user_id: "u".into(),
        allowed_configs: vec!["zoom".into()],
        return_url: "https://a.example/back".into(),
        status: "pending".into(),
        error_code: None,
        error_message: None,
        grant_id: None,
        expires_at: 10,
        created_at: 1,
        completed_at: None,
    };
    store.insert_connect_session(&session).await.unwrap();
    assert_eq!(store.find_connect_session_by_token(&[3; 32]).await.unwrap(), session);
    let started =
        SessionOutcome { status: "started", error_code: None, error_message: None, grant_id: None, completed_at: None };
    assert!(store.transition_connect_session("cns_1", "pending", &started).await.unwrap());
    assert!(!store.transition_connect_session("cns_1", "pending", &started).await.unwrap(), "only once");
    let done = SessionOutcome {
        status: "succeeded",
        error_code: None,
        error_message: None,
        grant_id: Some("grt_1"),
        completed_at: Some(9),
    };
    assert!(store.transition_connect_session("cns_1", "started", &done).await.unwrap());
    let stored = store.get_connect_session("app_a", "cns_1").await.unwrap();
    assert_eq!((stored.status.as_str(), stored.grant_id.as_deref()), ("succeeded", Some("grt_1")));
    assert!(matches!(store.get_connect_session("app_b", "cns_1").await, Err(StoreError::NotFound)));
}

async fn oauth_flow_state_is_consumed_once(store: Store) {
    with_app_and_config(&store).await;
    let flow = OAuthFlowRecord {
        id: "flw_1".into(),
        state_hash: vec![4; 32],
        browser_hash: vec![5; 32],
        app_id: "app_a".into(),
        session_id: None,
        provider_config_id: "pcf_1".into(),
        redirect_uri: "https://v/cb".into(),
        pkce_verifier: Some(vec![6; 50]),
        expected_issuer: None,
        expires_at: 100,
        created_at: 1,
        used_at: None,
    };
    store.insert_oauth_flow(&flow).await.unwrap();
    assert_eq!(store.find_oauth_flow_by_state(&[4; 32]).await.unwrap(), flow);
    assert!(store.consume_oauth_flow("flw_1", 50).await.unwrap());
    assert!(!store.consume_oauth_flow("flw_1", 51).await.unwrap());
    let used = store.find_oauth_flow_by_state(&[4; 32]).await.unwrap();
    assert_eq!(used.used_at, Some(50));
    assert_eq!(used.pkce_verifier, None, "the verifier is erased once used");
}

async fn grants_upsert_by_id_and_identity_is_unique(store: Store) {
    with_app_and_config(&store).await;
    store.upsert_grant(&grant("grt_1", "u1", "acct")).await.unwrap();
    assert_eq!(store.find_grant_id("app_a", "u1", "pcf_1", "acct").await.unwrap().as_deref(), Some("grt_1"));
    let mut reconnect = grant("grt_1", "u1", "acct");
    reconnect.access_token = Some(vec![9; 30]);
    reconnect.updated_at = 2;
    store.upsert_grant(&reconnect).await.unwrap();
    let stored = store.get_grant("app_a", "grt_1").await.unwrap();
    assert_eq!(stored.access_token, Some(vec![9; 30]));
    assert_eq!(stored.created_at, 1, "a reconnect keeps the creation time");
    // A second grant with the same identity under another id is a conflict.
    assert!(matches!(store.upsert_grant(&grant("grt_2", "u1", "acct")).await, Err(StoreError::Conflict(_))));
    store.upsert_grant(&grant("grt_3", "u2", "acct")).await.unwrap();
    let filter = GrantFilter { end_user_id: Some("u2"), ..GrantFilter::default() };
    assert_eq!(store.list_grants("app_a", &filter, None, 10).await.unwrap().len(), 1);
    assert_eq!(store.list_grants("app_a", &GrantFilter::default(), Some("grt_1"), 10).await.unwrap().len(), 1);
    assert!(store.list_grants("app_b", &GrantFilter::default(), None, 10).await.unwrap().is_empty());
    assert!(matches!(store.get_grant("app_b", "grt_1").await, Err(StoreError::NotFound)));
    assert_eq!(store.count_live_grants("pcf_1").await.unwrap(), 2);
}

async fn sealed_values_page_and_compare_and_swap(store: Store) {
    with_app_and_config(&store).await;
    store.upsert_grant(&grant("grt_1", "u1", "a1")).await.unwrap();
    store.upsert_grant(&grant("grt_2", "u2", "a2")).await.unwrap();
    let column = *SEALED_COLUMNS.iter().find(|c| c.table == "grants" && c.column == "access_token").unwrap();
    let page = store.sealed_values_page(column, "", 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].row_id, "grt_1");
    let rest = store.sealed_values_page(column, "grt_1", 10).await.unwrap();
    assert_eq!(rest.iter().map(|v| v.row_id.as_str()).collect::<Vec<_>>(), ["grt_2"]);
    assert!(!store.replace_sealed_value(column, "grt_1", &[0; 30], &[8; 30]).await.unwrap(), "stale expectation loses");
    assert!(store.replace_sealed_value(column, "grt_1", &[1; 30], &[8; 30]).await.unwrap());
    assert_eq!(store.get_grant("app_a", "grt_1").await.unwrap().access_token, Some(vec![8; 30]));
    // Every registered sealed column exists in the schema.
    for column in SEALED_COLUMNS {
        store.sealed_values_page(*column, "", 1).await.unwrap();
    }
}

fn audit_row(id: &str, app_id: &str, at: i64) -> AuditRecord {
    AuditRecord {
        id: id.into(),
        app_id: app_id.into(),
        at,
        action: "token.retrieved".into(),
        outcome: "success".into(),
        ..AuditRecord::default()
    }
}

async fn audit_purge_deletes_only_rows_older_than_the_cutoff(store: Store) {
    let rows = [
        audit_row("aud_1", "app_a", 1_000),
        audit_row("aud_2", "app_b", 1_999),
        audit_row("aud_3", "app_a", 2_000),
        audit_row("aud_4", "app_a", 3_000),
    ];
    store.append_audit(&rows).await.unwrap();
    let ids = |rows: Vec<AuditRecord>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let window = AuditFilter { from: Some(1_000), to: Some(2_000), ..AuditFilter::default() };
    assert_eq!(ids(store.query_audit("app_a", &window, None, 10).await.unwrap()), ["aud_1", "aud_3"], "inclusive");
    // Every app's rows before the cutoff go; the cutoff itself and later stay.
    assert_eq!(store.purge_audit(2_000).await.unwrap(), 2);
    assert_eq!(ids(store.query_audit("app_a", &AuditFilter::default(), None, 10).await.unwrap()), ["aud_3", "aud_4"]);
    assert!(store.query_audit("app_b", &AuditFilter::default(), None, 10).await.unwrap().is_empty());
    assert_eq!(store.purge_audit(2_000).await.unwrap(), 0, "nothing left to purge");
    assert_eq!(store.purge_audit(i64::MAX).await.unwrap(), 2);
}
