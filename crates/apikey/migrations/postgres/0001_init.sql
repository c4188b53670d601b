-- palisade-apikey: key records (hashes only) and the revocation epoch.
CREATE TABLE IF NOT EXISTS apikey_keys (
    key_id                TEXT PRIMARY KEY NOT NULL,
    key_hash              BYTEA NOT NULL UNIQUE,
    owner                 TEXT NOT NULL,
    environment           TEXT NOT NULL,
    hint                  TEXT NOT NULL,
    scopes                TEXT NOT NULL,
    plan_name             TEXT NOT NULL,
    plan_per_minute       BIGINT,
    plan_per_day          BIGINT,
    plan_burst            BIGINT,
    rate_limit_per_minute BIGINT,
    allowed_networks      TEXT NOT NULL,
    created_at_ms         BIGINT NOT NULL,
    expires_at_ms         BIGINT,
    last_used_at_ms       BIGINT,
    revoked_at_ms         BIGINT,
    rotated_from          TEXT,
    rotated_to            TEXT,
    grace_until_ms        BIGINT
);
CREATE INDEX IF NOT EXISTS apikey_keys_owner ON apikey_keys (owner, created_at_ms);
CREATE TABLE IF NOT EXISTS apikey_state (
    id               SMALLINT PRIMARY KEY NOT NULL CHECK (id = 1),
    revocation_epoch BIGINT NOT NULL
);
INSERT INTO apikey_state (id, revocation_epoch) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
