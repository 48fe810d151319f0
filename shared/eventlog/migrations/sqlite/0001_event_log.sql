-- The event log: the single source of truth. Append-only; see ARCHITECTURE.md.
-- SQLite has one writer at a time, so the rowid already follows commit order.
CREATE TABLE events (
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_type     TEXT    NOT NULL,
    stream_id       TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    occurred_at     TEXT    NOT NULL,
    actor_user      TEXT    NOT NULL,
    actor_agency    TEXT    NOT NULL,
    correlation_id  TEXT    NOT NULL,
    causation_id    TEXT,
    payload         TEXT    NOT NULL,
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (stream_type, stream_id, version)
);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;

CREATE TABLE event_seals (
    seal_seq    INTEGER PRIMARY KEY,
    position    INTEGER NOT NULL UNIQUE,
    event_hash  TEXT    NOT NULL,
    chain_hash  TEXT    NOT NULL
);

CREATE TABLE idempotency_keys (
    scope         TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    response      TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE checkpoints (
    name      TEXT    PRIMARY KEY,
    tx        INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    extra     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE quarantine (
    consumer   TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    event_id   TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    at         TEXT    NOT NULL,
    PRIMARY KEY (consumer, position)
);
