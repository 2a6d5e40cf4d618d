-- Byte counts of proxied calls: request body received from the caller, response body passed back.
ALTER TABLE audit_events ADD COLUMN request_bytes BIGINT;
ALTER TABLE audit_events ADD COLUMN response_bytes BIGINT;
