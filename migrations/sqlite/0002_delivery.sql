-- Events, deliveries and attempts. A delivery is one (event, webhook) pair;
-- it is due when status is pending/retrying and next_attempt_at has passed,
-- and owned by an instance while lease_until is in the future.

CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,  -- evt_…
    tenant_id       TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    environment     TEXT    NOT NULL,
    data            TEXT    NOT NULL,         -- the JSON object published
    idempotency_key TEXT,
    delivery_count  INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_tenant_seq ON events (tenant_id, seq);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE deliveries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id           TEXT    NOT NULL,
    event_seq           INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    webhook_id          INTEGER NOT NULL,
    event_type          TEXT    NOT NULL,
    status              TEXT    NOT NULL,     -- pending|retrying|succeeded|failed|diverted
    attempts            INTEGER NOT NULL DEFAULT 0,
    retry_step          INTEGER NOT NULL DEFAULT 0, -- attempts since (re)queueing
    next_attempt_at     INTEGER,
    lease_owner         TEXT,
    lease_until         INTEGER,
    last_status_code    INTEGER,
    last_error          TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_tenant_id ON deliveries (tenant_id, id);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);
CREATE INDEX deliveries_event ON deliveries (event_seq);

CREATE TABLE attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id      INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    tenant_id        TEXT    NOT NULL,
    attempted_at     INTEGER NOT NULL,
    duration_ms      INTEGER NOT NULL,
    url              TEXT    NOT NULL,
    request_headers  TEXT    NOT NULL,  -- JSON object, signatures redacted
    response_status  INTEGER,
    response_headers TEXT,              -- JSON object
    response_body    TEXT,
    error_kind       TEXT,              -- timeout|connect|dns|tls|blocked|http_status
    error            TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

-- Failure tracking for suspension (see failure_handling).
ALTER TABLE webhooks ADD COLUMN failure_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN failing_since INTEGER;
ALTER TABLE webhooks ADD COLUMN last_success_at INTEGER; -- the success that ended the last failure streak

-- Settings changed at run time (the admin page's defaults).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
