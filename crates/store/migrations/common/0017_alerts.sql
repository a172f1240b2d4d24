-- Security alerts. One row per kind, tenant and subject per deduplication window (dedup_key
-- holds all four): a repeat within the window counts an occurrence instead of adding a row.
-- summary and detail (JSON) hold ids and facts, never client content. A notice is queued to the
-- channels of the node that first finds it due: dispatched_at for the first notice,
-- follow_up_dispatched_at for the final count at window_end (due only if occurrences > 1).
CREATE TABLE alerts (
    id                      TEXT PRIMARY KEY,
    kind                    TEXT NOT NULL,
    severity                TEXT NOT NULL,
    tenant_id               TEXT REFERENCES tenants(id),
    subject                 TEXT NOT NULL,
    summary                 TEXT NOT NULL,
    detail                  TEXT NOT NULL,
    dedup_key               TEXT NOT NULL UNIQUE,
    occurrences             BIGINT NOT NULL DEFAULT 1,
    first_at                BIGINT NOT NULL,
    last_at                 BIGINT NOT NULL,
    window_end              BIGINT NOT NULL,
    dispatched_at           BIGINT,
    follow_up_dispatched_at BIGINT
);
CREATE INDEX alerts_undispatched ON alerts (first_at) WHERE dispatched_at IS NULL;
CREATE INDEX alerts_follow_up ON alerts (window_end)
    WHERE follow_up_dispatched_at IS NULL AND occurrences > 1;

-- The alert outbox: one row per notice per channel (an operator's address, or the webhook,
-- whose URL comes from configuration and is never stored). Delivery state as in mail_outbox:
-- next_attempt_at is when the row is due, or, while a node sends it, the end of its lease.
CREATE TABLE alert_deliveries (
    id              TEXT PRIMARY KEY,
    alert_id        TEXT NOT NULL REFERENCES alerts(id),
    channel         TEXT NOT NULL,
    recipient       TEXT,
    notice          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    failed_at       BIGINT,
    last_error      TEXT
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id);
