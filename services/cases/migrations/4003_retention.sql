-- Read model of the retention sweep and the auditor's list: every closed
-- case not yet erased, and the legal holds in force on it. Ids, times and
-- outcomes only: no client text.
CREATE TABLE cases_retention (
    case_id    TEXT PRIMARY KEY,
    -- RFC 3339, UTC, microseconds: sorts as it reads.
    closed_at  TEXT NOT NULL,
    outcome    TEXT NOT NULL
);
CREATE INDEX cases_retention_closed ON cases_retention (closed_at);
CREATE TABLE cases_holds (
    case_id  TEXT NOT NULL,
    hold_id  TEXT NOT NULL,
    PRIMARY KEY (case_id, hold_id)
);
