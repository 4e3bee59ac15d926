ALTER TABLE browser_sessions DROP COLUMN factors;
DROP TABLE invites;
DROP TABLE webauthn_credentials;
