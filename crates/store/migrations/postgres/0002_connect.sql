-- Origins an app allows as connect `return_url`s (JSON array), and where installs that start at
-- a provider (Aircall) send the browser to be claimed by one of the app's users.
ALTER TABLE apps ADD COLUMN return_origins TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN install_return_url TEXT;

CREATE TABLE provider_configs (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    provider TEXT NOT NULL,
    environment TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret BYTEA NOT NULL,
    scopes TEXT NOT NULL,
    custom_endpoints TEXT,
    redirect_uri TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (app_id, key)
);

CREATE TABLE connect_sessions (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    end_user_id TEXT NOT NULL,
    allowed_configs TEXT NOT NULL,
    return_url TEXT NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    grant_id TEXT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX connect_sessions_by_app ON connect_sessions (app_id, id);

CREATE TABLE oauth_flows (
    id TEXT PRIMARY KEY,
    state_hash BYTEA NOT NULL UNIQUE,
    browser_hash BYTEA NOT NULL,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    session_id TEXT REFERENCES connect_sessions (id) ON DELETE CASCADE,
    provider_config_id TEXT NOT NULL REFERENCES provider_configs (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    pkce_verifier BYTEA,
    expected_issuer TEXT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    provider_config_id TEXT NOT NULL REFERENCES provider_configs (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    environment TEXT NOT NULL,
    end_user_id TEXT NOT NULL,
    account_key TEXT NOT NULL,
    account_id TEXT NOT NULL,
    account_user_id TEXT,
    account_name TEXT,
    account_email TEXT,
    scopes TEXT NOT NULL,
    access_token BYTEA,
    refresh_token BYTEA,
    token_type TEXT NOT NULL,
    expires_at BIGINT,
    api_base_url TEXT,
    status TEXT NOT NULL,
    status_reason TEXT,
    connected_at BIGINT NOT NULL,
    refreshed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (app_id, end_user_id, provider_config_id, account_key)
);
CREATE INDEX grants_by_app ON grants (app_id, id);
CREATE INDEX grants_by_account ON grants (provider_config_id, account_key);

CREATE TABLE pending_installs (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    provider_config_id TEXT NOT NULL REFERENCES provider_configs (id) ON DELETE CASCADE,
    claim_hash BYTEA NOT NULL UNIQUE,
    access_token BYTEA,
    refresh_token BYTEA,
    token_type TEXT NOT NULL,
    expires_at BIGINT,
    scopes TEXT NOT NULL,
    api_base_url TEXT,
    account_key TEXT NOT NULL,
    account_id TEXT NOT NULL,
    account_user_id TEXT,
    account_name TEXT,
    account_email TEXT,
    claim_expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    claimed_at BIGINT
);
