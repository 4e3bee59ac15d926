DELETE FROM meta WHERE key = 'audit_keyed_after';
