-- A privileged client's grant ends with the elevation it was admitted under.
ALTER TABLE grants ADD COLUMN activation_id TEXT;

-- Whether a client registered itself (RFC 7591) or an administrator did:
-- the URLs a self-registered client gave are only ever called at public addresses.
ALTER TABLE clients ADD COLUMN registered_dynamically BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE clients SET registered_dynamically = (registration_token_hash IS NOT NULL);
