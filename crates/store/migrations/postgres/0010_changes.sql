-- The change feed: one row per change of what the vault's instances cache in memory (API keys,
-- grants and managed secrets by id, policies by app, apps), written by triggers in the same
-- transaction as the change itself, so no writer can forget it and a rolled-back change leaves
-- none. Every instance reads the rows after the last one it saw a few times a second and drops
-- what they name from its caches. Rows older than a few minutes are pruned. A grant's refresh
-- lease and an API key's last use are not part of what is cached, so writing them adds no row.
CREATE TABLE changes (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX changes_by_time ON changes (at);

-- TG_ARGV: the kind, and the column that is the key.
CREATE FUNCTION tokenvault_note_change() RETURNS trigger AS $$
DECLARE
    row_json JSONB;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_json := to_jsonb(OLD);
    ELSE
        row_json := to_jsonb(NEW);
    END IF;
    INSERT INTO changes (kind, key, at)
    VALUES (TG_ARGV[0], row_json ->> TG_ARGV[1], (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OF app_id, name, secret_hash, revoked_at OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION tokenvault_note_change('api_key', 'id');

CREATE TRIGGER grants_changed AFTER INSERT OR UPDATE OF app_id, provider_config_id, provider, environment, end_user_id, account_key, account_id, account_user_id, account_name, account_email, scopes, access_token, refresh_token, token_type, expires_at, api_base_url, status, status_reason, connected_at, refreshed_at, created_at, updated_at, next_refresh_at, refresh_failures, retry_at, last_error, revoked_at, refresh_sends_in_doubt, token_generation, refresh_rotates, refresh_doubt_since, last_error_detail OR DELETE ON grants
    FOR EACH ROW EXECUTE FUNCTION tokenvault_note_change('grant', 'id');

CREATE TRIGGER managed_secrets_changed AFTER INSERT OR UPDATE OR DELETE ON managed_secrets
    FOR EACH ROW EXECUTE FUNCTION tokenvault_note_change('managed_secret', 'id');

CREATE TRIGGER policies_changed AFTER INSERT OR UPDATE OR DELETE ON policies
    FOR EACH ROW EXECUTE FUNCTION tokenvault_note_change('policy', 'app_id');

CREATE TRIGGER apps_changed AFTER INSERT OR UPDATE OR DELETE ON apps
    FOR EACH ROW EXECUTE FUNCTION tokenvault_note_change('app', 'id');
