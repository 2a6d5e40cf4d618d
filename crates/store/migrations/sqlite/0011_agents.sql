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

DROP TRIGGER api_keys_changed_update;
CREATE TRIGGER api_keys_changed_update AFTER UPDATE OF app_id, name, secret_hash, revoked_at, scopes, expires_at, allowed_cidrs, rate_limit, parent_id, agent_id, replaced_by ON api_keys
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('api_key', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

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

CREATE TRIGGER agents_changed_insert AFTER INSERT ON agents
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('agent', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER agents_changed_update AFTER UPDATE ON agents
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('agent', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER agents_changed_delete AFTER DELETE ON agents
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('agent', OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER delegations_changed_insert AFTER INSERT ON delegations
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('delegation', NEW.agent_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER delegations_changed_update AFTER UPDATE ON delegations
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('delegation', NEW.agent_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER delegations_changed_delete AFTER DELETE ON delegations
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('delegation', OLD.agent_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

-- Policies may now target an agent. SQLite cannot change a CHECK constraint in place: the table
-- is rebuilt (nothing references it) with its index and change-feed triggers.
CREATE TABLE policies_new (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    target_type TEXT NOT NULL CHECK (target_type IN ('app', 'provider_config', 'grant', 'agent')),
    target_id TEXT NOT NULL,
    rules TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO policies_new (id, app_id, target_type, target_id, rules, created_at)
    SELECT id, app_id, target_type, target_id, rules, created_at FROM policies;
DROP TABLE policies;
ALTER TABLE policies_new RENAME TO policies;
CREATE INDEX policies_by_target ON policies (app_id, target_type, target_id);

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
