-- The cases service's tables (owned by verkosto-cases).

-- Read model: case headers and networks, for lists and invitations.
CREATE TABLE cases_headers (
    id            TEXT   PRIMARY KEY,
    pseudonym     TEXT   NOT NULL,
    lead_agency   TEXT   NOT NULL,
    minor         BIGINT NOT NULL,
    safety_risk   BIGINT NOT NULL,
    opened_at     TEXT   NOT NULL,
    version       BIGINT NOT NULL
);
CREATE TABLE cases_network (
    case_id     TEXT NOT NULL,
    agency      TEXT NOT NULL,
    -- 'member' or 'invited'
    status      TEXT NOT NULL,
    purpose     TEXT,
    invited_at  TEXT,
    PRIMARY KEY (case_id, agency)
);
CREATE INDEX cases_network_agency ON cases_network (agency, status);

-- The client's records. Not a projection: the body stays in this service
-- (it never travels on the shared stream) and is written in the same
-- transaction as its RecordAdded event, which carries the body's hash.
CREATE TABLE cases_records (
    id             TEXT   PRIMARY KEY,
    case_id        TEXT   NOT NULL,
    position       BIGINT NOT NULL,
    category       TEXT   NOT NULL,
    body           TEXT   NOT NULL,
    author_agency  TEXT   NOT NULL,
    author_user    TEXT   NOT NULL,
    corrects       TEXT,
    recorded_at    TEXT   NOT NULL
);
CREATE INDEX cases_records_case ON cases_records (case_id, position);
