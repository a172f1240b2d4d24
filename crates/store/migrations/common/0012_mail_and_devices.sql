-- Browsers each user has signed in from, known by the hash of their device cookie (the cookie
-- itself is never stored). A sign-in from any other browser notifies the user.
CREATE TABLE known_devices (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    user_id       TEXT NOT NULL REFERENCES users(id),
    device_hash   TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    user_agent    TEXT,
    ip            TEXT,
    PRIMARY KEY (tenant_id, user_id, device_hash)
);

-- Mail to users, queued in the transaction of the change it reports and sent in the background.
-- No address is kept: the recipient is read from the user's (encrypted) record at send time.
-- detail is JSON (IP, user agent, time), never client content. next_attempt_at is when the row
-- is due, or, while a node sends it, the end of that node's lease.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    user_id         TEXT NOT NULL REFERENCES users(id),
    kind            TEXT NOT NULL,
    detail          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    failed_at       BIGINT,
    last_error      TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_user ON mail_outbox (tenant_id, user_id);
