DROP TABLE registration_tokens;
DROP TABLE revoked_tokens;
DROP TABLE refresh_tokens;
DROP TABLE grants;
DROP TABLE consents;
DROP TABLE clients;
DROP TABLE signing_keys;
