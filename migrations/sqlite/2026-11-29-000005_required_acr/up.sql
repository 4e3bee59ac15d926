ALTER TABLE clients ADD COLUMN required_acr TEXT;
ALTER TABLE service_providers ADD COLUMN required_acr TEXT;
