-- What the connector learned about the remote systems, kept between runs: e.g. the largest
-- batch a Magento store's web API input limit let through, so that a run need not send its
-- first batch alone to find out again (the other slots idle for a round trip).
CREATE TABLE learned (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    learned_at TEXT NOT NULL
) WITHOUT ROWID;
