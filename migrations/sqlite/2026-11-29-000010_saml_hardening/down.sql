ALTER TABLE service_providers DROP COLUMN allow_unsigned_logout;
