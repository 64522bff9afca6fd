-- Admin page sessions. The cookie carries a random token; only its SHA-256
-- is stored, with the hash of the key that signed in (re-checked on every
-- request, so a revoked key ends its sessions).
CREATE TABLE admin_sessions (
    id_hash     BYTEA PRIMARY KEY,
    key_hash    BYTEA NOT NULL,
    tenant_id   TEXT NOT NULL,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
