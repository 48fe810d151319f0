-- The web app's sessions (owned by verkosto-web; see src/session.rs). The
-- browser's cookie holds a random id; this table holds only values derived
-- from it: the row's key (an HMAC of the id) and the API token sealed under
-- a key only the id gives. Times are milliseconds since the epoch, by the
-- database's clock.
CREATE TABLE web_sessions (
    id_hash     TEXT   PRIMARY KEY,
    user_id     TEXT   NOT NULL,
    token       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_seen ON web_sessions (seen_at);
CREATE INDEX web_sessions_created ON web_sessions (created_at);
