-- Admin page sessions. The cookie carries a random token; only its SHA-256
-- is stored, with a reference to the key that signed in (re-checked on
-- every request, so a revoked key ends its sessions): a provisioned key's
-- SHA-256 (as in api_keys), or a management key's SHA-256 under an HMAC
-- keyed by the encryption key (management keys never reach the database
-- in a form that could be guessed offline).
CREATE TABLE admin_sessions (
    id_hash     BYTEA PRIMARY KEY,
    key_ref     BYTEA NOT NULL,
    tenant_id   TEXT NOT NULL,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
