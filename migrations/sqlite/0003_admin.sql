-- Admin page sessions. The cookie carries a random token; only its SHA-256
-- is stored, with the hash of the key that signed in (re-checked on every
-- request, so a revoked key ends its sessions).
CREATE TABLE admin_sessions (
    id_hash     BLOB PRIMARY KEY,
    key_hash    BLOB NOT NULL,
    tenant_id   TEXT NOT NULL,
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
