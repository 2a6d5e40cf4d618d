-- Token buckets of rate-limit policies shared by every vault instance on this database (one per
-- policy and subject): N instances together allow the policy's rate, not N times it. On SQLite
-- (one instance) the buckets live in memory and this table stays empty.
CREATE TABLE rate_buckets (
    policy_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    tokens REAL NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (policy_id, subject)
);
