-- Security incidents: vulnerability and breach reports and their handling by operators. What
-- people wrote (summary, details, contact, notes) is sealed in `body` under the incident's own
-- data key, stored wrapped by the master key (key_id names which, as for tenant keys); the
-- columns beside it are what lists, target-time checks and concurrent updates need. `version`
-- is a compare-and-set counter: an update names the version it read.
CREATE TABLE incidents (
    id                TEXT PRIMARY KEY,
    reference         TEXT NOT NULL UNIQUE,
    kind              TEXT NOT NULL,
    severity          TEXT NOT NULL,
    state             TEXT NOT NULL,
    reported_at       BIGINT NOT NULL,
    triage_due        BIGINT NOT NULL,
    triage_alerted_at BIGINT,
    assignee          TEXT REFERENCES operators (id),
    version           BIGINT NOT NULL,
    key_id            TEXT NOT NULL,
    wrapped_key       TEXT NOT NULL,
    body              TEXT NOT NULL
);
CREATE INDEX incidents_by_state ON incidents (state, triage_due);

-- A firm told of a confirmed breach: what the scoping found of it (ids only), shown to its
-- owners and admins as a banner and through the API. Destroyed with the firm.
CREATE TABLE breach_notices (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    tenant_id   TEXT NOT NULL,
    notified_at BIGINT NOT NULL,
    detail      TEXT NOT NULL,
    PRIMARY KEY (incident_id, tenant_id)
);
CREATE INDEX breach_notices_by_tenant ON breach_notices (tenant_id, notified_at);
