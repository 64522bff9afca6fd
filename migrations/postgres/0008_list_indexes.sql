-- (PostgreSQL) The failed and diverted deliveries of a tenant, newest
-- first: the management lists' `status=diverted` (which also lists the
-- failed ones). They are few among millions of succeeded ones, so without
-- this index the planner reads the whole table for them
-- (tests/it/query_plans.rs). Partial: a delivery enters it only when it
-- ends failed or diverted, so the hot path of succeeding deliveries does
-- not maintain it.
CREATE INDEX deliveries_failed_or_diverted ON deliveries (tenant_id, id)
    WHERE status IN ('diverted', 'failed');
