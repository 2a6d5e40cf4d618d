//! The store conformance suite: every case runs against SQLite and against PostgreSQL, each in a
//! fresh database of its own.

use tokenvault_store::{
    AdminTokenRecord, ApiKeyRecord, AppRecord, AuditFilter, AuditRecord, ConnectSessionRecord, EncryptionKeyRecord,
    GrantFilter, GrantRecord, KeyState, OAuthFlowRecord, ProviderConfigRecord, ProviderWebhookRecord, RefreshHold,
    RefreshedTokens, SEALED_COLUMNS, SessionOutcome, Store, StoreError, WebhookDeliveryRecord, WebhookEndpointRecord,
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
    refresh_lease_renewal_and_stale_holders_cannot_clobber_a_newer_refresh,
    resealing_leaves_the_token_generation_alone_and_a_refresh_still_lands,
    a_refresh_result_overrides_a_spent_token_verdict_of_its_generation_only,
    state_changes_and_their_outbox_events_commit_together,
    a_connect_and_its_event_commit_together,
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
        branding: Default::default(),
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
        ..Default::default()
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
    assert_eq!(keys[0].retired_at, Some(99));
    // The material outlives retirement until a later rotation erases it.
    assert!(keys[0].wrapped_key.is_some());
    assert_eq!(store.erase_retired_keys(99).await.unwrap(), 0, "only keys retired earlier");
    assert_eq!(store.erase_retired_keys(100).await.unwrap(), 1);
    let keys = store.list_encryption_keys().await.unwrap();
    assert_eq!(keys[0].wrapped_key, None);
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
        refresh_sends_in_doubt: 0,
        token_generation: 0,
        refresh_rotates: false,
        refresh_doubt_since: None,
        last_error_detail: None,
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
        delegate_agent_id: None,
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

async fn refresh_lease_renewal_and_stale_holders_cannot_clobber_a_newer_refresh(store: Store) {
    with_app_and_config(&store).await;
    store.upsert_grant(&grant("grt_1", "user-1", "acct-1")).await.unwrap();
    let old = vec![2u8; 30];
    let new = vec![8u8; 30];
    // A holder renews its lease while it works: nobody else can take it after the first term.
    assert!(store.try_acquire_refresh_lease("grt_1", "A", 0, 1_000).await.unwrap());
    assert!(store.renew_refresh_lease("grt_1", "A", 2_500).await.unwrap());
    assert!(!store.try_acquire_refresh_lease("grt_1", "B", 2_000, 3_000).await.unwrap());
    // A stalls and stops renewing; once the lease has run out B takes it and refreshes.
    assert!(store.try_acquire_refresh_lease("grt_1", "B", 2_500, 3_500).await.unwrap());
    assert!(!store.renew_refresh_lease("grt_1", "A", 4_000).await.unwrap(), "A cannot renew a lease B holds");
    let a_at_0 = RefreshHold { owner: "A", generation: 0 };
    assert!(!store.record_refresh_send("grt_1", a_at_0, 1, None, 2_500).await.unwrap(), "A may not send any more");
    let tokens = RefreshedTokens {
        access_token: vec![7; 30],
        refresh_token: Some(new.clone()),
        expires_at: Some(9_000),
        api_base_url: None,
        scopes: None,
        next_refresh_at: Some(8_000),
        refreshed_at: 2_600,
        rotated: true,
    };
    let _ = old;
    assert!(store.complete_refresh("grt_1", 0, &tokens, &[]).await.unwrap());
    // A wakes up with Zoom's `invalid_grant` for the old token: its outcome writes change nothing.
    let stale = a_at_0;
    assert!(!store.mark_needs_reauth("grt_1", "refresh_token_rejected", None, 2_700, Some(stale), &[]).await.unwrap());
    assert_eq!(
        store
            .record_refresh_failure(
                "grt_1",
                stale,
                9_999,
                "provider_unavailable",
                "HTTP 503 from id.example/token",
                2_700,
                0
            )
            .await
            .unwrap(),
        0
    );
    let g = store.find_grant("grt_1").await.unwrap();
    assert_eq!((g.status.as_str(), g.refresh_token.as_deref()), ("active", Some(&new[..])));
    assert_eq!((g.retry_at, g.last_error, g.refresh_failures), (None, None, 0));
    // A holder whose lease was taken over cannot write even with the current token...
    assert!(store.try_acquire_refresh_lease("grt_1", "C", 10_000, 11_000).await.unwrap());
    let taken_over = RefreshHold { owner: "A", generation: 1 };
    assert!(
        !store.mark_needs_reauth("grt_1", "refresh_token_rejected", None, 10_001, Some(taken_over), &[]).await.unwrap()
    );
    // ...while the current holder's outcome applies.
    let current = RefreshHold { owner: "C", generation: 1 };
    assert!(
        store.mark_needs_reauth("grt_1", "refresh_token_rejected", None, 10_002, Some(current), &[]).await.unwrap()
    );
    let g = store.find_grant("grt_1").await.unwrap();
    assert_eq!((g.status.as_str(), g.status_reason.as_deref()), ("needs_reauth", Some("refresh_token_rejected")));
    assert_eq!(g.refresh_lease_until, None);
}

fn event(id: &str, event_type: &str) -> WebhookDeliveryRecord {
    WebhookDeliveryRecord {
        id: id.into(),
        message_id: format!("msg_{id}"),
        app_id: "app_a".into(),
        endpoint_id: "whe_1".into(),
        event_type: event_type.into(),
        payload: "{}".into(),
        state: "pending".into(),
        attempts: 0,
        next_attempt_at: 1,
        last_status: None,
        last_error: None,
        created_at: 1,
        delivered_at: None,
    }
}

async fn outbox_ids(store: &Store) -> Vec<String> {
    store.list_webhook_deliveries("app_a", None, None, 100).await.unwrap().into_iter().map(|d| d.id).collect()
}

/// The endpoint `event` rows are addressed to.
async fn with_webhook_endpoint(store: &Store) {
    let endpoint = WebhookEndpointRecord {
        id: "whe_1".into(),
        app_id: "app_a".into(),
        url: "https://app.example/hooks".into(),
        secret: vec![1; 32],
        event_types: vec!["grant.connected".into(), "grant.refreshed".into(), "grant.needs_reauth".into()],
        created_at: 1,
        previous_secret: None,
        previous_secret_until: None,
    };
    store.insert_webhook_endpoint(&endpoint).await.unwrap();
}

async fn a_connect_and_its_event_commit_together(store: Store) {
    with_app_and_config(&store).await;
    with_webhook_endpoint(&store).await;
    store.upsert_grant_announcing(&grant("grt_1", "u1", "acct"), &[event("wd_01", "grant.connected")]).await.unwrap();
    assert_eq!(outbox_ids(&store).await, ["wd_01"]);
    // A concurrent first connect of the same account loses: neither the grant nor its event is kept.
    let lost = store.upsert_grant_announcing(&grant("grt_2", "u1", "acct"), &[event("wd_02", "grant.connected")]).await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))));
    assert_eq!(outbox_ids(&store).await, ["wd_01"]);
    assert!(matches!(store.get_grant("app_a", "grt_2").await, Err(StoreError::NotFound)));
    // An event that cannot be written (a duplicate id) leaves no grant behind.
    assert!(store.upsert_grant_announcing(&grant("grt_3", "u3", "acct"), &[event("wd_01", "x")]).await.is_err());
    assert!(matches!(store.get_grant("app_a", "grt_3").await, Err(StoreError::NotFound)));
}

async fn state_changes_and_their_outbox_events_commit_together(store: Store) {
    with_app_and_config(&store).await;
    with_webhook_endpoint(&store).await;
    store.upsert_grant(&grant("grt_1", "user-1", "acct-1")).await.unwrap();
    store.upsert_grant(&grant("grt_2", "user-2", "acct-2")).await.unwrap();
    let tokens = RefreshedTokens {
        access_token: vec![7; 30],
        refresh_token: Some(vec![8; 30]),
        expires_at: Some(9_000),
        api_base_url: None,
        scopes: None,
        next_refresh_at: Some(8_000),
        refreshed_at: 2,
        rotated: false,
    };
    // A refresh that loses its compare-and-swap announces nothing; the one that wins does.
    assert!(!store.complete_refresh("grt_1", 7, &tokens, &[event("wd_01", "grant.refreshed")]).await.unwrap());
    assert!(outbox_ids(&store).await.is_empty());
    assert!(store.complete_refresh("grt_1", 0, &tokens, &[event("wd_02", "grant.refreshed")]).await.unwrap());
    assert_eq!(outbox_ids(&store).await, ["wd_02"]);
    // A stale holder's needs_reauth is a no-op and so is its event; a second marking writes no duplicate.
    store.try_acquire_refresh_lease("grt_1", "A", 3, 1_000).await.unwrap();
    let stale = RefreshHold { owner: "A", generation: 0 };
    let reauth = |id: &str| [event(id, "grant.needs_reauth")];
    assert!(
        !store
            .mark_needs_reauth("grt_1", "refresh_token_rejected", None, 4, Some(stale), &reauth("wd_03"))
            .await
            .unwrap()
    );
    assert!(
        store.mark_needs_reauth("grt_1", "provider_rejected_token", None, 5, None, &reauth("wd_04")).await.unwrap()
    );
    assert!(
        !store.mark_needs_reauth("grt_1", "provider_rejected_token", None, 6, None, &reauth("wd_05")).await.unwrap()
    );
    assert_eq!(outbox_ids(&store).await, ["wd_02", "wd_04"]);
    // Revocation erases tokens and provider webhooks with its event; a redelivery writes nothing.
    let webhook = ProviderWebhookRecord {
        id: "pwh_1".into(),
        grant_id: "grt_1".into(),
        provider_config_id: "pcf_1".into(),
        remote_id: "42".into(),
        token_hash: vec![3; 32],
        token: vec![4; 30],
        created_at: 1,
    };
    store.insert_provider_webhook(&webhook).await.unwrap();
    assert!(store.revoke_grant("grt_1", "disconnected", 7, &[event("wd_06", "grant.revoked")]).await.unwrap());
    assert!(!store.revoke_grant("grt_1", "disconnected", 8, &[event("wd_07", "grant.revoked")]).await.unwrap());
    assert_eq!(outbox_ids(&store).await, ["wd_02", "wd_04", "wd_06"]);
    assert!(store.provider_webhook_remote_ids("grt_1").await.unwrap().is_empty());
    let revoked = store.find_grant("grt_1").await.unwrap();
    assert_eq!((revoked.status.as_str(), revoked.refresh_token), ("revoked", None));
    // An event that cannot be written (here: a duplicate id) rolls the state change back.
    assert!(store.revoke_grant("grt_2", "disconnected", 9, &[event("wd_06", "grant.revoked")]).await.is_err());
    let untouched = store.find_grant("grt_2").await.unwrap();
    assert_eq!((untouched.status.as_str(), untouched.refresh_token.is_some()), ("active", true));
    assert_eq!(outbox_ids(&store).await, ["wd_02", "wd_04", "wd_06"]);
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

fn refreshed(access: u8, refresh: u8, rotated: bool) -> RefreshedTokens {
    RefreshedTokens {
        access_token: vec![access; 30],
        refresh_token: Some(vec![refresh; 30]),
        expires_at: Some(9_000),
        api_base_url: None,
        scopes: None,
        next_refresh_at: Some(8_000),
        refreshed_at: 2_000,
        rotated,
    }
}

async fn resealing_leaves_the_token_generation_alone_and_a_refresh_still_lands(store: Store) {
    with_app_and_config(&store).await;
    store.upsert_grant(&grant("grt_1", "user-1", "acct-1")).await.unwrap();
    assert!(store.try_acquire_refresh_lease("grt_1", "A", 0, 1_000).await.unwrap());
    let hold = RefreshHold { owner: "A", generation: 0 };
    assert!(store.record_refresh_send("grt_1", hold, 1, None, 10).await.unwrap());
    // A key rotation re-seals both tokens while A's refresh is at the provider.
    let column = |name| SEALED_COLUMNS.iter().copied().find(|c| c.table == "grants" && c.column == name).unwrap();
    assert!(store.replace_sealed_value(column("refresh_token"), "grt_1", &[2; 30], &[5; 30]).await.unwrap());
    assert!(store.replace_sealed_value(column("access_token"), "grt_1", &[1; 30], &[6; 30]).await.unwrap());
    let g = store.find_grant("grt_1").await.unwrap();
    assert_eq!(g.token_generation, 0, "re-sealing is not a new token pair");
    // A's outcome writes still apply, and so does its result.
    assert!(store.record_refresh_send("grt_1", hold, 2, Some("response_lost"), 20).await.unwrap());
    assert_eq!(store.find_grant("grt_1").await.unwrap().refresh_doubt_since, Some(10), "the first send in doubt");
    assert!(store.complete_refresh("grt_1", 0, &refreshed(7, 8, true), &[]).await.unwrap());
    let g = store.find_grant("grt_1").await.unwrap();
    assert_eq!((g.token_generation, g.refresh_rotates, g.refresh_sends_in_doubt), (1, true, 0));
    assert_eq!(g.refresh_doubt_since, None);
    assert_eq!(g.refresh_token, Some(vec![8; 30]));
    // The generation moved on: a second result from generation 0 (a stale holder) loses.
    assert!(!store.complete_refresh("grt_1", 0, &refreshed(3, 4, false), &[]).await.unwrap());
    assert_eq!(store.find_grant("grt_1").await.unwrap().access_token, Some(vec![7; 30]));
    // A rotation seen once is remembered; a reconnect starts a new generation and keeps it.
    assert!(store.complete_refresh("grt_1", 1, &refreshed(3, 4, false), &[]).await.unwrap());
    store.upsert_grant(&grant("grt_1", "user-1", "acct-1")).await.unwrap();
    let g = store.find_grant("grt_1").await.unwrap();
    assert_eq!((g.token_generation, g.refresh_rotates), (3, true));
}

async fn a_refresh_result_overrides_a_spent_token_verdict_of_its_generation_only(store: Store) {
    with_app_and_config(&store).await;
    store.upsert_grant(&grant("grt_1", "user-1", "acct-1")).await.unwrap();
    // Another holder sent the spent generation-0 token and was told `invalid_grant`; this
    // holder has the pair that generation-0 token was exchanged for: it is the grant.
    assert!(store.mark_needs_reauth("grt_1", "refresh_response_lost", None, 1, None, &[]).await.unwrap());
    assert!(store.complete_refresh("grt_1", 0, &refreshed(7, 8, true), &[]).await.unwrap());
    let g = store.find_grant("grt_1").await.unwrap();
    assert_eq!((g.status.as_str(), g.status_reason.as_deref(), g.token_generation), ("active", None, 1));
    // Other reasons stand: a newer authorization elsewhere, or a revocation.
    assert!(store.mark_needs_reauth("grt_1", "superseded_by_newer_authorization", None, 2, None, &[]).await.unwrap());
    assert!(!store.complete_refresh("grt_1", 1, &refreshed(3, 4, true), &[]).await.unwrap());
    store.upsert_grant(&grant("grt_2", "user-2", "acct-2")).await.unwrap();
    assert!(store.revoke_grant("grt_2", "disconnected", 3, &[]).await.unwrap());
    assert!(!store.complete_refresh("grt_2", 0, &refreshed(3, 4, true), &[]).await.unwrap());
    let g = store.find_grant("grt_2").await.unwrap();
    assert_eq!((g.status.as_str(), g.access_token), ("revoked", None));
}
