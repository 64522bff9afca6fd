-- (PostgreSQL) Instances sharing the database announce themselves; the
-- leases of one whose heartbeat stopped are taken over by the others.
CREATE TABLE instances (
    owner        TEXT   PRIMARY KEY,
    heartbeat_at BIGINT NOT NULL
);
CREATE INDEX deliveries_lease_owner ON deliveries (lease_owner) WHERE lease_owner IS NOT NULL;
