-- Provider webhooks: Zoom's signing secret (sealed) and, for Aircall, the events the vault
-- subscribes to for each connected account.
ALTER TABLE provider_configs ADD COLUMN webhook_secret BLOB;
ALTER TABLE provider_configs ADD COLUMN provider_webhook_events TEXT;

-- Webhooks the vault created at a provider for a grant (Aircall); deleted on disconnect.
CREATE TABLE provider_webhooks (
    id TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    provider_config_id TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    token BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX provider_webhooks_by_grant ON provider_webhooks (grant_id);

-- The app's own webhook endpoints (Standard Webhooks) and the durable delivery outbox.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret BLOB NOT NULL,
    event_types TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_app ON webhook_endpoints (app_id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_app ON webhook_deliveries (app_id, id);
