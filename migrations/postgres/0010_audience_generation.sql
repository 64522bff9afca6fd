-- (PostgreSQL) A counter of changes to what fan-out reads (the webhooks'
-- audience columns, the event types' categories). Each instance keeps the
-- audiences it read, with the counter's value read in the same statement;
-- the statement that writes a batch's events checks that value is still
-- current, in its own snapshot, and writes nothing if it is not (the
-- instance then reads the audience again). Bumped by triggers in the
-- transaction of the change, so a change and its bump commit together.
CREATE TABLE audience_generation (
    one        BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    generation BIGINT  NOT NULL
);
INSERT INTO audience_generation (one, generation) VALUES (TRUE, 1);

CREATE FUNCTION bump_audience_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE audience_generation SET generation = generation + 1;
    RETURN NULL;
END
$$;

-- Row triggers, and on updates only when a column fan-out reads changed:
-- the hot path's failure tally writes other columns of `webhooks` on
-- every batch with failures, and must neither bump nor lock the counter.
CREATE TRIGGER webhooks_audience_insert_delete AFTER INSERT OR DELETE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION bump_audience_generation();
CREATE TRIGGER webhooks_audience_update AFTER UPDATE ON webhooks
    FOR EACH ROW
    WHEN ((OLD.tenant_id, OLD.environment, OLD.enabled, OLD.events, OLD.suspended, OLD.filter,
           OLD.version, OLD.ordering, OLD.paused)
          IS DISTINCT FROM
          (NEW.tenant_id, NEW.environment, NEW.enabled, NEW.events, NEW.suspended, NEW.filter,
           NEW.version, NEW.ordering, NEW.paused))
    EXECUTE FUNCTION bump_audience_generation();
CREATE TRIGGER webhooks_audience_truncate AFTER TRUNCATE ON webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION bump_audience_generation();
CREATE TRIGGER event_types_audience AFTER INSERT OR DELETE OR UPDATE ON event_types
    FOR EACH ROW EXECUTE FUNCTION bump_audience_generation();
CREATE TRIGGER event_types_audience_truncate AFTER TRUNCATE ON event_types
    FOR EACH STATEMENT EXECUTE FUNCTION bump_audience_generation();
