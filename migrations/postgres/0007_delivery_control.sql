-- Delivery control (SPEC §12). `filter` is the webhook's filter document
-- as JSON text (validated on write); `ordering` is 'none' or 'fifo';
-- a paused webhook's waiting deliveries have no due time (parked).
ALTER TABLE webhooks ADD COLUMN filter TEXT;
ALTER TABLE webhooks ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';
ALTER TABLE webhooks ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE webhooks ADD COLUMN paused_at BIGINT;

-- A delivery to a fifo webhook carries its queue's key ('' when the event
-- gave none); NULL for every other delivery. The claim takes only a
-- queue's oldest unfinished delivery, found through this index.
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
CREATE INDEX deliveries_ordered ON deliveries (webhook_id, ordering_key, id)
    WHERE ordering_key IS NOT NULL AND status IN ('pending', 'retrying');
-- Pause and resume touch a webhook's waiting deliveries.
CREATE INDEX deliveries_waiting ON deliveries (webhook_id, id)
    WHERE status IN ('pending', 'retrying');
-- Claims take due deliveries in (due time, id) order, so a resumed
-- backlog goes out in publish order (SQLite's index ends in the rowid).
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'retrying');
