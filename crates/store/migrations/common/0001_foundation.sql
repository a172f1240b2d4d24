-- Foundation schema. Times are milliseconds since the Unix epoch; ids are UUID text.
CREATE TABLE tenants (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    email         TEXT NOT NULL,
    -- What equality lookups use: a keyed blind index of the normalised email (the email
    -- itself is stored encrypted).
    email_lookup  TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    status        TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    UNIQUE (tenant_id, email_lookup)
);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id),
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE links (
    token_hash TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    tenant_id  TEXT,
    user_id    TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id),
    secret_hash  TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (tenant_id, user_id);

CREATE TABLE matters (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    reference  TEXT NOT NULL,
    title      TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX matters_tenant ON matters (tenant_id, created_at);

CREATE TABLE matter_members (
    tenant_id TEXT NOT NULL,
    matter_id TEXT NOT NULL REFERENCES matters(id),
    user_id   TEXT NOT NULL REFERENCES users(id),
    role      TEXT NOT NULL,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (matter_id, user_id)
);
CREATE INDEX matter_members_user ON matter_members (tenant_id, user_id);

CREATE TABLE documents (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    matter_id    TEXT NOT NULL REFERENCES matters(id),
    name         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    uploaded_by  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX documents_matter ON documents (tenant_id, matter_id, created_at);

CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    matter_id  TEXT NOT NULL REFERENCES matters(id),
    author_id  TEXT NOT NULL REFERENCES users(id),
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- Position in the matter's conversation: timestamps can tie, the order must not.
    seq        BIGINT NOT NULL
);
CREATE UNIQUE INDEX messages_matter ON messages (tenant_id, matter_id, seq);

-- The audit log: one hash chain per tenant ('' for platform events). The head row serialises
-- writers of a chain; events are append-only.
CREATE TABLE audit_heads (
    chain TEXT PRIMARY KEY,
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);

CREATE TABLE audit_events (
    chain      TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    ip         TEXT,
    request_id TEXT,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
