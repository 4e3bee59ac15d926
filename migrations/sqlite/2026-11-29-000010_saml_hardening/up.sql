ALTER TABLE service_providers ADD COLUMN allow_unsigned_logout BOOLEAN NOT NULL DEFAULT 0;
