-- The event log: the single source of truth. Append-only; see ARCHITECTURE.md.
CREATE TABLE events (
    -- Global position, allocated at insert (not at commit): tailers order by
    -- (tx_id, position) and read only below the oldest running transaction.
    position        BIGSERIAL PRIMARY KEY,
    tx_id           xid8   NOT NULL DEFAULT pg_current_xact_id(),
    stream_type     TEXT   NOT NULL,
    stream_id       TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    event_id        TEXT   NOT NULL UNIQUE,
    event_type      TEXT   NOT NULL,
    schema_version  BIGINT NOT NULL,
    occurred_at     TEXT   NOT NULL,
    actor_user      TEXT   NOT NULL,
    actor_agency    TEXT   NOT NULL,
    correlation_id  TEXT   NOT NULL,
    causation_id    TEXT,
    payload         TEXT   NOT NULL,
    prev_hash       TEXT   NOT NULL,
    hash            TEXT   NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (stream_type, stream_id, version)
);
CREATE INDEX events_commit_order ON events (tx_id, position);

-- Events are never changed or deleted.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- The global integrity chain, written by the sealer in commit order.
CREATE TABLE event_seals (
    seal_seq    BIGINT PRIMARY KEY,
    position    BIGINT NOT NULL UNIQUE,
    event_hash  TEXT   NOT NULL,
    chain_hash  TEXT   NOT NULL
);

-- Answers to writes that carried an Idempotency-Key, stored in the same
-- transaction as the events they produced.
CREATE TABLE idempotency_keys (
    scope         TEXT   NOT NULL,
    key           TEXT   NOT NULL,
    request_hash  TEXT   NOT NULL,
    status        BIGINT NOT NULL,
    response      TEXT   NOT NULL,
    created_at    TEXT   NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Where each consumer (projection, sealer, relay) has got to, updated in the
-- same transaction as its effect.
CREATE TABLE checkpoints (
    name      TEXT   PRIMARY KEY,
    tx        BIGINT NOT NULL,
    position  BIGINT NOT NULL,
    extra     BIGINT NOT NULL DEFAULT 0
);

-- Events a consumer could not decode or apply: kept aside with the reason,
-- never silently skipped.
CREATE TABLE quarantine (
    consumer   TEXT   NOT NULL,
    position   BIGINT NOT NULL,
    event_id   TEXT   NOT NULL,
    reason     TEXT   NOT NULL,
    at         TEXT   NOT NULL,
    PRIMARY KEY (consumer, position)
);
