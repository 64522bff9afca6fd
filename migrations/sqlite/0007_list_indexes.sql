-- The failed and diverted deliveries of a tenant, newest first: the
-- management lists' `status=diverted` (which also lists the failed ones).
-- They are few among millions of succeeded ones; without this index the
-- list walks all of a tenant's deliveries to find them
-- (tests/it/query_plans.rs). Partial: a delivery enters it only when it
-- ends failed or diverted, so the hot path of succeeding deliveries does
-- not maintain it. The predicate is the list's own text, so SQLite sees
-- that the query implies it.
CREATE INDEX deliveries_failed_or_diverted ON deliveries (tenant_id, id)
    WHERE status IN ('diverted', 'failed');
