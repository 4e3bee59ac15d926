ALTER TABLE clients DROP COLUMN registered_dynamically;
ALTER TABLE grants DROP COLUMN activation_id;
