ALTER TABLE user_groups ADD COLUMN required_acr TEXT;
