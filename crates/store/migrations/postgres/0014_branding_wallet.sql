-- An app's branding, shown on the hosted Connect UI and the wallet (all optional), and wallet
-- sessions: a short-lived sign-in of one end user to their connections. The link's secret and
-- the browser cookie's secret are kept only as hashes; a link opens once.
ALTER TABLE apps ADD COLUMN display_name TEXT;
ALTER TABLE apps ADD COLUMN logo_url TEXT;
ALTER TABLE apps ADD COLUMN accent_color TEXT;
ALTER TABLE apps ADD COLUMN support_url TEXT;

CREATE TABLE wallet_sessions (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    end_user_id TEXT NOT NULL,
    link_hash TEXT NOT NULL UNIQUE,
    cookie_hash TEXT UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    opened_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX wallet_sessions_by_app ON wallet_sessions (app_id, end_user_id);

-- A webhook endpoint's signing secret can be rotated: for a grace period deliveries are signed
-- with the new and the previous secret (Standard Webhooks allows several signatures).
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret BYTEA;
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_until BIGINT;
