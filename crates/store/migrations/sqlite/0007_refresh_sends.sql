-- Sends of the stored refresh token whose outcome the vault never saw (a lost response, or a
-- holder that died mid-call). Written before each send to a rotating provider and reset when the
-- token changes, so the old token is sent at most twice in total (quirk 11), across restarts.
ALTER TABLE grants ADD COLUMN refresh_sends_in_doubt BIGINT NOT NULL DEFAULT 0;
