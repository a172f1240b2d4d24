-- Leases: a named job that must run on one node at a time (the backup scheduler) or a state
-- other nodes must respect while it lasts (a backup in progress holds back the deletion of
-- replaced document copies its snapshot may still name). Taken and renewed with a
-- compare-and-set upsert: free, expired, or already the holder's.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
