-- The change feed: one row per change of what the vault's instances cache in memory (API keys,
-- grants and managed secrets by id, policies by app, apps), written by triggers in the same
-- transaction as the change itself, so no writer can forget it and a rolled-back change leaves
-- none. Every instance reads the rows after the last one it saw a few times a second and drops
-- what they name from its caches. Rows older than a few minutes are pruned. A grant's refresh
-- lease and an API key's last use are not part of what is cached, so writing them adds no row.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX changes_by_time ON changes (at);

CREATE TRIGGER api_keys_changed_insert AFTER INSERT ON api_keys
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('api_key', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER api_keys_changed_update AFTER UPDATE OF app_id, name, secret_hash, revoked_at ON api_keys
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('api_key', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER api_keys_changed_delete AFTER DELETE ON api_keys
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('api_key', OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER grants_changed_insert AFTER INSERT ON grants
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('grant', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER grants_changed_update AFTER UPDATE OF app_id, provider_config_id, provider, environment, end_user_id, account_key, account_id, account_user_id, account_name, account_email, scopes, access_token, refresh_token, token_type, expires_at, api_base_url, status, status_reason, connected_at, refreshed_at, created_at, updated_at, next_refresh_at, refresh_failures, retry_at, last_error, revoked_at, refresh_sends_in_doubt, token_generation, refresh_rotates, refresh_doubt_since, last_error_detail ON grants
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('grant', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER grants_changed_delete AFTER DELETE ON grants
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('grant', OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER managed_secrets_changed_insert AFTER INSERT ON managed_secrets
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('managed_secret', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER managed_secrets_changed_update AFTER UPDATE ON managed_secrets
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('managed_secret', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER managed_secrets_changed_delete AFTER DELETE ON managed_secrets
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('managed_secret', OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER policies_changed_insert AFTER INSERT ON policies
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('policy', NEW.app_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER policies_changed_update AFTER UPDATE ON policies
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('policy', NEW.app_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER policies_changed_delete AFTER DELETE ON policies
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('policy', OLD.app_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER apps_changed_insert AFTER INSERT ON apps
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('app', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER apps_changed_update AFTER UPDATE ON apps
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('app', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER apps_changed_delete AFTER DELETE ON apps
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('app', OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
