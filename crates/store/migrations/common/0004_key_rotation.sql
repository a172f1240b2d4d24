-- Tenant-key rotation: which key version encrypts each document and which stored copy holds it,
-- the rotations themselves, and the stored objects waiting to be deleted.

-- blob_rev '' is the copy written at upload; a rotation writes each new copy under a fresh
-- revision and switches the row over only once that copy is complete.
ALTER TABLE documents ADD COLUMN key_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE documents ADD COLUMN blob_rev TEXT NOT NULL DEFAULT '';
CREATE INDEX documents_key_version ON documents (tenant_id, key_version);

-- One row per rotation (per new data key version); open while finished_at is NULL.
CREATE TABLE key_rotations (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    target_version BIGINT NOT NULL,
    started_at     BIGINT NOT NULL,
    finished_at    BIGINT,
    heartbeat_at   BIGINT,
    documents_done BIGINT NOT NULL DEFAULT 0,
    fields_done    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, target_version)
);

-- Stored objects to delete. 'pending': a copy being written, recorded before its first byte so a
-- crash cannot leave it behind unnoticed; a copy is only put to use by deleting its row in the
-- same transaction, so a swept copy can never become a document's bytes. 'replaced': a copy no
-- document uses any more.
CREATE TABLE blob_garbage (
    blob_key   TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
