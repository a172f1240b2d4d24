-- Two-factor authentication: TOTP enrolments, recovery codes, the firm's requirement, and what
-- each session knows of its second factor.

-- A user's active TOTP factor; id is the user's id, secret is sealed like client information
-- (see crypto::fields). last_step: the newest time step a code was accepted for.
CREATE TABLE user_totp (
    id          TEXT PRIMARY KEY REFERENCES users(id),
    tenant_id   TEXT NOT NULL,
    secret      TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    last_step   BIGINT NOT NULL
);

-- An enrolment waiting for its first code, kept apart so starting a new one never disables the
-- active factor.
CREATE TABLE totp_enrolments (
    id         TEXT PRIMARY KEY REFERENCES users(id),
    tenant_id  TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Only SHA-256 hashes of the codes; used_at marks a spent one.
CREATE TABLE recovery_codes (
    tenant_id TEXT NOT NULL,
    user_id   TEXT NOT NULL REFERENCES users(id),
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

ALTER TABLE tenants ADD COLUMN two_factor_staff BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN two_factor_clients BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN second_factor_at BIGINT;
ALTER TABLE sessions ADD COLUMN enrol_required BIGINT NOT NULL DEFAULT 0;
