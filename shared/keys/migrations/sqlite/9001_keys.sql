-- The key store (shared/keys), a SQLite file of its own: each case's data
-- key wrapped by the key-encryption key, the blind index, and the
-- deployment's index key. The store opens it with secure_delete on and the
-- rollback journal (not WAL), so that a destroyed key leaves no copy behind.

-- One row per case. Destroying the key nulls kek_id and wrapped and sets
-- destroyed_at: the row stays as a tombstone, so no new key is ever made
-- for an erased case.
CREATE TABLE IF NOT EXISTS data_keys (
    case_id TEXT PRIMARY KEY NOT NULL,
    kek_id TEXT,
    wrapped BLOB,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    destroyed_at TEXT,
    CHECK ((kek_id IS NULL) = (wrapped IS NULL)),
    CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);

-- HMAC tokens of normalized field values (names), to find a case by them.
CREATE TABLE IF NOT EXISTS blind_index (
    case_id TEXT NOT NULL,
    field TEXT NOT NULL,
    token TEXT NOT NULL,
    PRIMARY KEY (field, token, case_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blind_index_by_case ON blind_index (case_id);

-- Keys of the deployment, wrapped like the data keys: `blind_index`, the
-- blind index's HMAC key, made on first open.
CREATE TABLE IF NOT EXISTS deployment_keys (
    name TEXT PRIMARY KEY NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
