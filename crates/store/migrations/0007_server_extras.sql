-- Server sub-resources (compute): system metadata, console tokens, and the live-migration
-- progress columns os-migrations and /servers/{id}/migrations show.

-- Nova's instance_system_metadata: key/value pairs kept by the service, never shown as
-- server metadata. `password` holds what os-server-password shows (set by the guest through
-- the metadata service, cleared by DELETE os-server-password).
CREATE TABLE instance_system_metadata (
    instance_uuid TEXT NOT NULL REFERENCES instances (uuid) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (instance_uuid, key)
);

-- Remote console tokens (Nova's console_auth_tokens). The token itself is never stored, only
-- its SHA-256 (`token_hash`), as Nova does; a token is valid until `expires`.
CREATE TABLE console_auth_tokens (
    token_hash TEXT PRIMARY KEY,
    instance_uuid TEXT NOT NULL REFERENCES instances (uuid) ON DELETE CASCADE,
    console_type TEXT NOT NULL,
    host TEXT NOT NULL,
    port BIGINT NOT NULL,
    internal_access_path TEXT,
    access_url_base TEXT NOT NULL,
    expires BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX console_auth_tokens_instance ON console_auth_tokens (instance_uuid);
CREATE INDEX console_auth_tokens_expires ON console_auth_tokens (expires);

-- Migrations: the destination host's address and live-migration progress (bytes), NULL until
-- the driver reports them.
ALTER TABLE migrations ADD COLUMN dest_host TEXT;
ALTER TABLE migrations ADD COLUMN memory_total BIGINT;
ALTER TABLE migrations ADD COLUMN memory_processed BIGINT;
ALTER TABLE migrations ADD COLUMN memory_remaining BIGINT;
ALTER TABLE migrations ADD COLUMN disk_total BIGINT;
ALTER TABLE migrations ADD COLUMN disk_processed BIGINT;
ALTER TABLE migrations ADD COLUMN disk_remaining BIGINT;
CREATE INDEX migrations_updated ON migrations (updated_at);
