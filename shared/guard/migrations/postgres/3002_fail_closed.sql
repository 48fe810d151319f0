-- The access log refuses TRUNCATE too, and marks auditors' reads.
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_refuse_change();
ALTER TABLE access_log ADD COLUMN auditor BIGINT NOT NULL DEFAULT 0;

-- The case facts the rules for minors need.
ALTER TABLE guard_cases ADD COLUMN comes_of_age TEXT;
ALTER TABLE guard_cases ADD COLUMN minor_may_consent TEXT NOT NULL DEFAULT '';

-- Consent and case events this process could not read. While a case has
-- one, its view is stale: every read withholds everything, consent writes
-- are refused. Never skipped: a row goes only when the event is read (a
-- newer binary) or an operator resolves it (an event in the log).
CREATE TABLE guard_unreadable (
    consumer     TEXT   NOT NULL,
    case_id      TEXT   NOT NULL,
    event_id     TEXT   NOT NULL,
    stream_type  TEXT   NOT NULL,
    event_type   TEXT   NOT NULL,
    position     BIGINT NOT NULL,
    reason       TEXT   NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX guard_unreadable_case ON guard_unreadable (consumer, case_id);
