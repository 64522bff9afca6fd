-- (PostgreSQL) Indexes for the management lists' filters, found by
-- tests/it/query_plans.rs and by EXPLAIN on ten million delivered
-- deliveries: where a filter's rows are few among millions, the planner
-- otherwise reads the whole table for them.
--
-- The failed and diverted deliveries of a tenant, newest first (the
-- lists' `status=diverted`, which also lists the failed ones). Partial:
-- a delivery enters it only when it ends failed or diverted, so the hot
-- path of succeeding deliveries does not maintain it.
CREATE INDEX deliveries_failed_or_diverted ON deliveries (tenant_id, id)
    WHERE status IN ('diverted', 'failed');
-- A tenant's deliveries and events of one type, newest first.
CREATE INDEX deliveries_tenant_type ON deliveries (tenant_id, event_type, id);
CREATE INDEX events_tenant_type ON events (tenant_id, event_type, seq);
-- A tenant's deliveries created in a window (`since`, `until`): with
-- statistics the planner takes it for a narrow window and keeps walking
-- ids for a wide one. (Not on SQLite, whose planner has no statistics in
-- hookd and would sort a wide window's every row through it.)
CREATE INDEX deliveries_tenant_created ON deliveries (tenant_id, created_at);
