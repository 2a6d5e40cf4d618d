-- Token lifecycle: the refresh lease (one refresh per grant across every vault instance), the
-- background refresher's schedule, retry backoff, and revocation.
ALTER TABLE grants ADD COLUMN refresh_lease_owner TEXT;
ALTER TABLE grants ADD COLUMN refresh_lease_until BIGINT;
ALTER TABLE grants ADD COLUMN next_refresh_at BIGINT;
ALTER TABLE grants ADD COLUMN refresh_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE grants ADD COLUMN retry_at BIGINT;
ALTER TABLE grants ADD COLUMN last_error TEXT;
ALTER TABLE grants ADD COLUMN revoked_at BIGINT;
CREATE INDEX grants_due_for_refresh ON grants (next_refresh_at) WHERE status = 'active';
