-- Scoped, expiring, rotatable API keys; agents with their own keys; delegations of grants to
-- agents. Keys minted before scopes existed keep `scopes` NULL, which means full access.
ALTER TABLE api_keys ADD COLUMN scopes TEXT;
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN allowed_cidrs TEXT;
ALTER TABLE api_keys ADD COLUMN rate_limit TEXT;
ALTER TABLE api_keys ADD COLUMN parent_id TEXT;
ALTER TABLE api_keys ADD COLUMN agent_id TEXT;
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;
CREATE INDEX api_keys_by_parent ON api_keys (parent_id);

DROP TRIGGER api_keys_changed ON api_keys;
CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OF app_id, name, secret_hash, revoked_at, scopes, expires_at, allowed_cidrs, rate_limit, parent_id, agent_id, replaced_by OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION tokenvault_note_change('api_key', 'id');

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX agents_by_app ON agents (app_id, id);

CREATE TABLE delegations (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    grant_id TEXT NOT NULL,
    methods TEXT,
    paths TEXT,
    proxy_only BIGINT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX delegations_by_agent ON delegations (agent_id, id);
CREATE INDEX delegations_by_app ON delegations (app_id, id);

ALTER TABLE connect_sessions ADD COLUMN delegate_agent_id TEXT;

ALTER TABLE audit_events ADD COLUMN agent_id TEXT;
ALTER TABLE audit_events ADD COLUMN api_key_id TEXT;

CREATE TRIGGER agents_changed AFTER INSERT OR UPDATE OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION tokenvault_note_change('agent', 'id');
CREATE TRIGGER delegations_changed AFTER INSERT OR UPDATE OR DELETE ON delegations
    FOR EACH ROW EXECUTE FUNCTION tokenvault_note_change('delegation', 'agent_id');

-- Policies may now target an agent.
ALTER TABLE policies DROP CONSTRAINT policies_target_type_check;
ALTER TABLE policies ADD CONSTRAINT policies_target_type_check
    CHECK (target_type IN ('app', 'provider_config', 'grant', 'agent'));
