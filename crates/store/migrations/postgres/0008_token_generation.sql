-- The identity of a grant's current token pair, independent of how it is sealed: bumped by every
-- write that replaces the tokens (a refresh, a reconnect). Refresh outcomes compare it instead of
-- ciphertext bytes, so a key rotation re-sealing a token in place is invisible to them.
ALTER TABLE grants ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
-- 1 once a refresh of this grant returned a new refresh token: the provider rotates, whatever
-- its catalog entry says, and a lost refresh answer is accounted for as with Zoom (quirk 11).
ALTER TABLE grants ADD COLUMN refresh_rotates BIGINT NOT NULL DEFAULT 0;
-- When the first send of the stored refresh token whose answer is unknown happened: within the
-- provider's rotation grace from then, sending it again is safe.
ALTER TABLE grants ADD COLUMN refresh_doubt_since BIGINT;
-- Why the last provider call for this grant failed, in words: provider endpoint (host and path),
-- HTTP status, the provider's error code and description, or the TLS verification failure.
-- `last_error` stays the machine-readable code.
ALTER TABLE grants ADD COLUMN last_error_detail TEXT;
