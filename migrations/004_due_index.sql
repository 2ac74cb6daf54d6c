-- The due messages of an entity in queue order: what every `connector sync` reads, chunk by
-- chunk. Before, that read went through messages_by_record (entity) and so visited every
-- message the entity ever had — delivered and skipped ones kept for `retention_days` included —
-- and sorted them, once per chunk: a sync of 100,000 prices spent a fifth of its time there.
-- Partial, so delivered, skipped, held and dead messages (most of the table) are not in it.
CREATE INDEX messages_due ON messages (entity, id) WHERE status IN ('pending', 'failed');
