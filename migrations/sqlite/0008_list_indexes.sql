-- Indexes for the management lists' filters, found by
-- tests/it/query_plans.rs: where a filter's rows are few among millions,
-- a list otherwise walks all of a tenant's deliveries or events.
--
-- The failed and diverted deliveries of a tenant, newest first (the
-- lists' `status=diverted`, which also lists the failed ones). Partial:
-- a delivery enters it only when it ends failed or diverted, so the hot
-- path of succeeding deliveries does not maintain it. The predicate is the
-- list's own text, so SQLite sees that the query implies it.
CREATE INDEX deliveries_failed_or_diverted ON deliveries (tenant_id, id)
    WHERE status IN ('diverted', 'failed');
-- A tenant's deliveries and events of one type, newest first.
CREATE INDEX deliveries_tenant_type ON deliveries (tenant_id, event_type, id);
CREATE INDEX events_tenant_type ON events (tenant_id, event_type, seq);
