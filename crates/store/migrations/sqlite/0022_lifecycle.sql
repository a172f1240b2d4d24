-- Subscription lifecycle, retention notices and the erasure ledger (see docs/lifecycle.md).

-- A tenant is 'active', 'ended' (its subscription ended at ended_at: nobody signs in, data
-- kept) or 'erasing' (a destruction has started; the erasure ledger has its row). A destroyed
-- tenant has no row here any more: the ledger remembers it.
ALTER TABLE tenants ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE tenants ADD COLUMN ended_at BIGINT;

-- The notices before destruction queued for one ending of a subscription (ended_at), one row
-- per notice (days before destruction), so each goes out once; a later ending has notices of
-- its own.
CREATE TABLE retention_notices (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    ended_at    BIGINT NOT NULL,
    days_before BIGINT NOT NULL,
    queued_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, ended_at, days_before)
);

-- The erasure ledger: one row per destroyed (or being destroyed) tenant, kept for good. Its
-- id and name stay reserved. A row with finished_at NULL is a destruction still to finish;
-- keys_destroyed_at marks the crypto-shred. notify_to holds the owners' addresses (JSON),
-- captured before destruction for the certificate mail and emptied once it is sent.
-- synced_to_backups_at stays NULL until the backup target has applied the erasure.
CREATE TABLE tenant_erasures (
    tenant_id            TEXT PRIMARY KEY,
    tenant_name          TEXT NOT NULL UNIQUE,
    reason               TEXT NOT NULL,
    requested_by         TEXT NOT NULL,
    approved_by          TEXT,
    requested_at         BIGINT NOT NULL,
    approved_at          BIGINT,
    keys_destroyed_at    BIGINT,
    audit_seq            BIGINT,
    audit_head           TEXT,
    finished_at          BIGINT,
    counts               TEXT NOT NULL,
    certificate          TEXT,
    notify_to            TEXT NOT NULL,
    notified_at          BIGINT,
    synced_to_backups_at BIGINT
);
CREATE INDEX tenant_erasures_open ON tenant_erasures (requested_at) WHERE finished_at IS NULL;
CREATE INDEX tenant_erasures_unsynced ON tenant_erasures (finished_at) WHERE synced_to_backups_at IS NULL;

-- Ledger rows are never removed.
CREATE TRIGGER tenant_erasures_no_delete BEFORE DELETE ON tenant_erasures
BEGIN SELECT RAISE(ABORT, 'the erasure ledger is append-only'); END;

-- Audit events stay append-only, with one controlled exception: the events of a tenant's chain
-- may be deleted once the erasure ledger records that the tenant's keys were destroyed (the
-- destruction then removes the chain; the platform chain keeps the erasure and the chain's
-- final head hash). Updates are refused as before.
DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN NOT EXISTS (
    SELECT 1 FROM tenant_erasures e WHERE e.tenant_id = OLD.chain AND e.keys_destroyed_at IS NOT NULL
)
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
