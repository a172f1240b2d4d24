-- Intrusion and anomaly detection (see docs/security.md, "Intrusion and anomaly detection").
-- Blocks: what the portal currently refuses. scope 'source' blocks a client address (ip) for the
-- whole platform; 'account' makes one account step up its second factor (tenant_id, user_id);
-- 'downloads' pauses one user's downloads until an admin resumes them. A block ends at
-- expires_at (NULL: until lifted) or when lifted (lifted_at, lifted_by).
CREATE TABLE security_blocks (
    id         TEXT PRIMARY KEY,
    scope      TEXT NOT NULL,
    tenant_id  TEXT REFERENCES tenants(id),
    user_id    TEXT,
    ip         TEXT,
    reason     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    lifted_at  BIGINT,
    lifted_by  TEXT
);
CREATE INDEX security_blocks_ip ON security_blocks (ip) WHERE lifted_at IS NULL;
CREATE INDEX security_blocks_user ON security_blocks (tenant_id, user_id) WHERE lifted_at IS NULL;

-- Detections: what was noticed (attacks and behaviour anomalies), for admins and operators.
-- Ids and facts only (addresses, counts), never client content.
CREATE TABLE security_detections (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    tenant_id  TEXT REFERENCES tenants(id),
    user_id    TEXT,
    ip         TEXT,
    detail     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX security_detections_tenant ON security_detections (tenant_id, created_at);

-- Failed sign-ins by source and target, kept for one detection window, shared by all nodes:
-- spraying is many targets from one ip, stuffing is many ips on one target. target is a user
-- id, or a keyed hash of tenant and email for names that do not exist.
CREATE TABLE signin_failures (
    ip     TEXT NOT NULL,
    target TEXT NOT NULL,
    at     BIGINT NOT NULL
);
CREATE INDEX signin_failures_ip ON signin_failures (ip, at);
CREATE INDEX signin_failures_target ON signin_failures (target, at);
CREATE INDEX signin_failures_at ON signin_failures (at);

-- Per-user behaviour baselines: today's downloads (day counted in days since the Unix epoch,
-- UTC), exponentially weighted averages of earlier active days (times 1000, as integers so
-- both engines store them alike), the number of days folded in, and sign-ins per UTC hour
-- (JSON array of 24 counts).
CREATE TABLE user_baselines (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    user_id     TEXT NOT NULL,
    day         BIGINT NOT NULL,
    day_count   BIGINT NOT NULL,
    day_bytes   BIGINT NOT NULL,
    avg_count   BIGINT NOT NULL,
    avg_bytes   BIGINT NOT NULL,
    days        BIGINT NOT NULL,
    hours       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- Addresses each user has signed in from, to notice a new one.
CREATE TABLE user_known_ips (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    user_id    TEXT NOT NULL,
    ip         TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, ip)
);
