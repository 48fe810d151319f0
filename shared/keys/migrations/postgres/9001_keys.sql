-- The key store (shared/keys) in a schema of its own: each case's data key
-- wrapped by the key-encryption key, the blind index, and the deployment's
-- index key. Nobody but the schema's owner (and its members) may see it.
CREATE SCHEMA IF NOT EXISTS verkosto_keys;
REVOKE ALL ON SCHEMA verkosto_keys FROM PUBLIC;

-- One row per case. Destroying the key nulls kek_id and wrapped and sets
-- destroyed_at (the store then runs VACUUM, so that the dead tuple with the
-- old wrapped key goes): the row stays as a tombstone, so no new key is
-- ever made for an erased case.
CREATE TABLE IF NOT EXISTS verkosto_keys.data_keys (
    case_id TEXT PRIMARY KEY,
    kek_id TEXT,
    wrapped BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    destroyed_at TIMESTAMPTZ,
    CHECK ((kek_id IS NULL) = (wrapped IS NULL)),
    CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);

-- HMAC tokens of normalized field values (names), to find a case by them.
CREATE TABLE IF NOT EXISTS verkosto_keys.blind_index (
    case_id TEXT NOT NULL,
    field TEXT NOT NULL,
    token TEXT NOT NULL,
    PRIMARY KEY (field, token, case_id)
);
CREATE INDEX IF NOT EXISTS blind_index_by_case ON verkosto_keys.blind_index (case_id);

-- Keys of the deployment, wrapped like the data keys: `blind_index`, the
-- blind index's HMAC key, made on first open.
CREATE TABLE IF NOT EXISTS verkosto_keys.deployment_keys (
    name TEXT PRIMARY KEY,
    kek_id TEXT NOT NULL,
    wrapped BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
REVOKE ALL ON ALL TABLES IN SCHEMA verkosto_keys FROM PUBLIC;

-- Where the connecting role may create roles, the schema and its tables
-- belong to a NOLOGIN role `verkosto_keys`, of which the connecting role is
-- made a member: grant it to whichever other role must reach the keys, and
-- to no other. Elsewhere (a role without CREATEROLE) this is skipped and
-- the connecting role owns them.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles
               WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
        BEGIN
            CREATE ROLE verkosto_keys NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- made before, or by a migration running at the same time
        END;
        IF NOT pg_has_role(current_user, 'verkosto_keys', 'MEMBER') THEN
            EXECUTE format('GRANT verkosto_keys TO %I', current_user);
        END IF;
        ALTER SCHEMA verkosto_keys OWNER TO verkosto_keys;
        ALTER TABLE verkosto_keys.data_keys OWNER TO verkosto_keys;
        ALTER TABLE verkosto_keys.blind_index OWNER TO verkosto_keys;
        ALTER TABLE verkosto_keys.deployment_keys OWNER TO verkosto_keys;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    NULL; -- may not grant or hand over: the connecting role keeps them
END
$$;
