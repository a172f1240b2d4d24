-- Four eyes: sensitive actions wait here until a second, different admin approves them.
-- action is the JSON form of the action and its parameters (ids and roles, no client content).
CREATE TABLE approvals (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    action       TEXT NOT NULL,
    requested_by TEXT NOT NULL REFERENCES users(id),
    requested_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    state        TEXT NOT NULL,
    decided_by   TEXT REFERENCES users(id),
    decided_at   BIGINT
);
CREATE INDEX approvals_tenant ON approvals (tenant_id, requested_at);
