-- Approvals: a proxied call a `require_approval` policy rule holds until its approvers decide.
-- `request` (the headers that would be sent and the body) and `result` (the upstream answer,
-- kept until fetched or expired) are sealed like every secret. `decisions` is a JSON list.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    grant_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    end_user_id TEXT,
    agent_id TEXT,
    api_key_id TEXT,
    actor_type TEXT,
    actor_id TEXT,
    actor_reason TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT,
    request BYTEA,
    body_bytes BIGINT NOT NULL,
    policy_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'executing', 'executed', 'failed')),
    decisions TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    executed_at BIGINT,
    result_status BIGINT,
    result BYTEA,
    result_expires_at BIGINT,
    error_code TEXT
);
CREATE INDEX approvals_by_app ON approvals (app_id, id);
CREATE INDEX approvals_by_status ON approvals (status, expires_at);

-- One-use links an approver opens in a browser; only the hash of the link's secret is kept.
CREATE TABLE approval_links (
    id TEXT PRIMARY KEY,
    approval_id TEXT NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    approver TEXT NOT NULL CHECK (approver IN ('end_user', 'operator')),
    created_by TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX approval_links_by_approval ON approval_links (approval_id);

-- Policies may now target a delegation.
ALTER TABLE policies DROP CONSTRAINT policies_target_type_check;
ALTER TABLE policies ADD CONSTRAINT policies_target_type_check
    CHECK (target_type IN ('app', 'provider_config', 'grant', 'agent', 'delegation'));
