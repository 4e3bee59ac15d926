-- Existing clients keep RS256, the algorithm their access tokens always had.
ALTER TABLE clients ADD COLUMN access_token_alg TEXT NOT NULL DEFAULT 'RS256';
