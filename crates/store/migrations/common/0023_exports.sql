-- Tenant exports: one row per approved export (keyed by its approval), with the progress the
-- export job records as it writes the archive, and what it stored. The archive itself is in
-- the blob store under the tenant's prefix; the row outlives it (state `expired`) as a record.
CREATE TABLE tenant_exports (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    approved_by     TEXT NOT NULL,
    state           TEXT NOT NULL,
    entries_done    BIGINT NOT NULL,
    entries_total   BIGINT NOT NULL,
    bytes_done      BIGINT NOT NULL,
    bytes_total     BIGINT NOT NULL,
    archive_size    BIGINT,
    archive_sha256  TEXT,
    manifest_sha256 TEXT,
    error           TEXT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    expires_at      BIGINT
);
CREATE INDEX tenant_exports_tenant ON tenant_exports (tenant_id, created_at);
CREATE INDEX tenant_exports_state ON tenant_exports (state);
