-- Indexes shaped by what reads the queue, each partial so that a message's usual life
-- (pending -> delivered) touches as few of them as possible.
--
-- The due messages of an entity in queue order: what every `connector sync` reads, chunk by
-- chunk. Before, that read went through messages_by_record (entity) and so visited every
-- message the entity ever had — delivered and skipped ones kept for `retention_days` included —
-- and sorted them, once per chunk: a sync of 100,000 prices spent a fifth of its time there.
CREATE INDEX messages_due ON messages (entity, id) WHERE status IN ('pending', 'failed');

-- Housekeeping deletes delivered and skipped messages by age; through messages_by_status it
-- read every delivered message's row on each run to find none old enough.
CREATE INDEX messages_done ON messages (updated_at) WHERE status IN ('delivered', 'skipped');

-- messages_by_status (status, direction, entity, next_attempt_at) held every message and was
-- rewritten at each status change; what it served is covered by the two below.
DROP INDEX messages_by_status;
-- `connector failed`, `failed retry` / `failed skip`.
CREATE INDEX messages_failed ON messages (id) WHERE status IN ('failed', 'dead');
-- `connector activate` releases what a pause held.
CREATE INDEX messages_held ON messages (direction) WHERE status = 'held';
