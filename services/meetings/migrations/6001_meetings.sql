-- The meetings service's tables (owned by verkosto-meetings).

-- Read model: meetings by case (lists) and by participant agency (calendar
-- feeds). The meeting itself is read from its stream.
CREATE TABLE meetings_meetings (
    id           TEXT   PRIMARY KEY,
    case_id      TEXT   NOT NULL,
    lead_agency  TEXT   NOT NULL,
    title        TEXT   NOT NULL,
    starts_at    TEXT   NOT NULL,
    ends_at      TEXT   NOT NULL,
    -- 'scheduled', 'held' or 'cancelled'
    status       TEXT   NOT NULL,
    -- the calendar SEQUENCE
    sequence     BIGINT NOT NULL,
    location     TEXT,
    -- when the calendar entry last changed (DTSTAMP)
    changed_at   TEXT   NOT NULL,
    version      BIGINT NOT NULL
);
CREATE INDEX meetings_meetings_case ON meetings_meetings (case_id, starts_at);
CREATE TABLE meetings_participants (
    meeting_id  TEXT NOT NULL,
    agency      TEXT NOT NULL,
    PRIMARY KEY (meeting_id, agency)
);
CREATE INDEX meetings_participants_agency ON meetings_participants (agency);
