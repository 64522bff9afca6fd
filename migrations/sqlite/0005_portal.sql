-- Customer portal (SPEC §11) and event-type schemas.
--
-- A portal link is single-use: only its token's SHA-256 is stored, with
-- the tenant it opens, the key that made it (re-checked by the session it
-- opens, so revoking that key ends the portal too) and when it was used.
CREATE TABLE portal_links (
    id_hash     BLOB PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    key_ref     BLOB NOT NULL,
    read_only   BOOLEAN NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX portal_links_expiry ON portal_links (expires_at);

-- A session is the admin page's ('admin', cookie) or a portal's ('portal',
-- 'portal_read_only': token in the portal's URLs); a token of one kind
-- never opens the other.
ALTER TABLE admin_sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'admin';

-- Optional JSON Schema of an event type's `data`, and an example of it
-- (both JSON text). A built-in type gets a tenant row to carry them.
ALTER TABLE event_types ADD COLUMN data_schema TEXT;
ALTER TABLE event_types ADD COLUMN example TEXT;
