-- Per-tenant data keys, stored only wrapped by the master key (key_id names which), versioned:
-- new writes use the highest version; older versions stay until re-encryption retires them.
CREATE TABLE tenant_keys (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    -- 'data' keys encrypt documents and fields; the 'index' key computes blind indexes.
    purpose    TEXT NOT NULL,
    version    BIGINT NOT NULL,
    key_id     TEXT NOT NULL,
    wrapped    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, purpose, version)
);
