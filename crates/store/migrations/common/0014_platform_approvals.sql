-- Four eyes on the platform: a sensitive platform action (master-key rotation) is requested by
-- one privileged operator and approved by another before the command line may carry it out.
-- used_at marks the approval as spent by the action it allowed.
CREATE TABLE platform_approvals (
    id           TEXT PRIMARY KEY,
    action       TEXT NOT NULL,
    requested_by TEXT NOT NULL REFERENCES operators (id),
    requested_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    state        TEXT NOT NULL,
    decided_by   TEXT REFERENCES operators (id),
    decided_at   BIGINT,
    used_at      BIGINT
);
