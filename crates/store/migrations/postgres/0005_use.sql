-- Policies, managed secrets and the audit log.
CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    target_type TEXT NOT NULL CHECK (target_type IN ('app', 'provider_config', 'grant')),
    target_id TEXT NOT NULL,
    rules TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX policies_by_target ON policies (app_id, target_type, target_id);

CREATE TABLE managed_secrets (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    end_user_id TEXT,
    style TEXT NOT NULL CHECK (style IN ('bearer', 'header', 'basic', 'query')),
    parameter TEXT,
    username TEXT,
    secret BYTEA,
    base_urls TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX managed_secrets_by_app ON managed_secrets (app_id, id);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    grant_id TEXT,
    end_user_id TEXT,
    provider TEXT,
    actor_type TEXT,
    actor_id TEXT,
    actor_reason TEXT,
    request_id TEXT,
    method TEXT,
    host TEXT,
    path TEXT,
    upstream_status BIGINT,
    latency_ms BIGINT,
    detail TEXT
);
CREATE INDEX audit_events_by_app ON audit_events (app_id, id);
CREATE INDEX audit_events_by_time ON audit_events (at);
