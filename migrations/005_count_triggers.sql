-- The triggers of 003 keep the number of messages per status with an UPDATE and an upsert.
-- A status change is the commonest write of a sync (every delivered message makes one, in a
-- statement per chunk since recording went to one UPDATE for a chunk's messages), and the
-- upsert's insert attempt was most of the trigger's cost. With a row for every status from
-- the start, each side is one UPDATE by key.
INSERT INTO message_counts (status, n)
VALUES ('pending', 0), ('held', 0), ('delivered', 0), ('failed', 0), ('dead', 0), ('skipped', 0)
ON CONFLICT (status) DO NOTHING;

DROP TRIGGER message_counts_insert;
CREATE TRIGGER message_counts_insert AFTER INSERT ON messages
BEGIN
    UPDATE message_counts SET n = n + 1 WHERE status = NEW.status;
END;

DROP TRIGGER message_counts_update;
CREATE TRIGGER message_counts_update AFTER UPDATE OF status ON messages
WHEN OLD.status IS NOT NEW.status
BEGIN
    UPDATE message_counts SET n = n - 1 WHERE status = OLD.status;
    UPDATE message_counts SET n = n + 1 WHERE status = NEW.status;
END;
