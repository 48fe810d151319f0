-- Each process's copy of what it needs to filter reads: the case's network
-- and its consent record (owned by verkosto-guard; one copy per consumer).
CREATE TABLE guard_cases (
    consumer     TEXT   NOT NULL,
    case_id      TEXT   NOT NULL,
    lead_agency  TEXT   NOT NULL,
    pseudonym    TEXT   NOT NULL,
    minor        BIGINT NOT NULL,
    safety_risk  BIGINT NOT NULL,
    PRIMARY KEY (consumer, case_id)
);
CREATE TABLE guard_members (
    consumer  TEXT NOT NULL,
    case_id   TEXT NOT NULL,
    agency    TEXT NOT NULL,
    PRIMARY KEY (consumer, case_id, agency)
);
CREATE INDEX guard_members_agency ON guard_members (consumer, agency);
CREATE TABLE guard_consent (
    consumer  TEXT   NOT NULL,
    case_id   TEXT   NOT NULL,
    version   BIGINT NOT NULL,
    payload   TEXT   NOT NULL,
    PRIMARY KEY (consumer, case_id, version)
);

-- Every read of client data, written before the data leaves the service.
-- Shared by all services: the auditor reads one log.
CREATE TABLE access_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id          TEXT   NOT NULL,
    reader_user      TEXT   NOT NULL,
    reader_agency    TEXT   NOT NULL,
    service          TEXT   NOT NULL,
    resource         TEXT   NOT NULL,
    returned         TEXT   NOT NULL,
    withheld         TEXT   NOT NULL,
    items_returned   BIGINT NOT NULL,
    items_withheld   BIGINT NOT NULL,
    consent_version  BIGINT NOT NULL,
    consent_fresh    BIGINT NOT NULL,
    read_at          TEXT   NOT NULL,
    request_id       TEXT
);
CREATE INDEX access_log_case ON access_log (case_id, id);
CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
