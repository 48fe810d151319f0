-- The agencies the cases service needs (owned by verkosto-cases): its own
-- read model of the directory's AgencyRegistered events.
CREATE TABLE cases_agencies (
    id    TEXT PRIMARY KEY,
    kind  TEXT NOT NULL
);
