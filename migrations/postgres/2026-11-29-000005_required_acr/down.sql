ALTER TABLE service_providers DROP COLUMN required_acr;
ALTER TABLE clients DROP COLUMN required_acr;
