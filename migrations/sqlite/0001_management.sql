-- Management data: webhooks, the tenant part of the event-type catalogue,
-- provisioned API keys. Times are epoch milliseconds. Sealed columns
-- (secret, previous_secret, headers) hold XChaCha20-Poly1305 ciphertext.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE webhooks (
    id                         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id                  TEXT    NOT NULL,
    name                       TEXT    NOT NULL,
    url                        TEXT    NOT NULL,
    events                     TEXT    NOT NULL, -- JSON array of subscriptions
    enabled                    BOOLEAN NOT NULL,
    environment                TEXT    NOT NULL,
    description                TEXT,
    headers                    BLOB    NOT NULL, -- sealed JSON object
    timeout_ms                 INTEGER NOT NULL,
    rate_limit                 INTEGER,
    retry_schedule             TEXT,             -- JSON array of ms; NULL = default
    failure_handling           TEXT,             -- JSON object; NULL = default
    suspended                  BOOLEAN NOT NULL DEFAULT FALSE,
    suspended_at               INTEGER,
    secret                     BLOB    NOT NULL,
    previous_secret            BLOB,
    previous_secret_expires_at INTEGER,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL,
    version                    INTEGER NOT NULL DEFAULT 1,
    search_text                TEXT    NOT NULL DEFAULT '' -- lowercased name and URL, for `q`
);
CREATE UNIQUE INDEX webhooks_tenant_url ON webhooks (tenant_id, url);
CREATE INDEX webhooks_tenant_environment ON webhooks (tenant_id, environment);

CREATE TABLE event_types (
    tenant_id   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    description TEXT,
    archived_at INTEGER,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    key_hash    BLOB    NOT NULL UNIQUE,
    permissions TEXT    NOT NULL, -- JSON array
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
