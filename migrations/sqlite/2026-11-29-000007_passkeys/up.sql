-- WebAuthn credentials: passkeys (discoverable) and security keys (second factor).
CREATE TABLE webauthn_credentials (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    discoverable BOOLEAN NOT NULL,
    credential TEXT NOT NULL,
    aaguid TEXT,
    sign_count BIGINT NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    backup_state BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials(user_id);

-- One-time enrollment links; only the SHA-256 digest of the token is kept.
CREATE TABLE invites (
    digest TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX invites_user ON invites(user_id);

-- When each method of a session was last proven: {"pwd": 1767225600, ...}.
ALTER TABLE browser_sessions ADD COLUMN factors TEXT NOT NULL DEFAULT '{}';
