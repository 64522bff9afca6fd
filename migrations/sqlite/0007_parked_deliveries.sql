-- A resumed webhook's parked deliveries (no due time) are made due a
-- slice at a time, oldest first; the pacer finds the webhooks that still
-- hold some and each next slice through this index, without reading the
-- rows already due.
CREATE INDEX deliveries_parked ON deliveries (webhook_id, id)
    WHERE next_attempt_at IS NULL AND status IN ('pending', 'retrying');
