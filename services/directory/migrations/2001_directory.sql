-- Read model of agencies and users (owned by verkosto-directory).
CREATE TABLE dir_agencies (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    registered_at  TEXT NOT NULL
);
CREATE TABLE dir_users (
    id            TEXT PRIMARY KEY,
    agency        TEXT NOT NULL,
    roles         TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE INDEX dir_users_agency ON dir_users (agency);
