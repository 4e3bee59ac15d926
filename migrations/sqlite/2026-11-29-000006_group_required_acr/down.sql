ALTER TABLE user_groups DROP COLUMN required_acr;
