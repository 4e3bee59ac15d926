-- Entries written so far keep their plain hash links; every later entry is
-- tagged with the keyed link. The marker records where keying began.
INSERT INTO meta (key, value)
SELECT 'audit_keyed_after', COALESCE(MAX(seq), 0)::TEXT FROM audit_log;
