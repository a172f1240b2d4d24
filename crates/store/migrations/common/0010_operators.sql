-- Platform operators: the service's own staff, apart from every tenant. They sign in to the
-- platform API with tokens made on the command line; no tenant row refers to them.
CREATE TABLE operators (
    id           TEXT PRIMARY KEY,
    email        TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE operator_grants (
    operator_id  TEXT NOT NULL REFERENCES operators(id),
    role         TEXT NOT NULL,
    granted_at   BIGINT NOT NULL,
    suspended_at BIGINT,
    PRIMARY KEY (operator_id, role)
);

-- Every vetting ever recorded (the newest counts); never updated.
CREATE TABLE operator_vetting (
    operator_id TEXT NOT NULL REFERENCES operators(id),
    checked_by  TEXT NOT NULL,
    checked_at  BIGINT NOT NULL,
    valid_until BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX operator_vetting_newest ON operator_vetting (operator_id, recorded_at);

CREATE TABLE operator_tokens (
    token_hash  TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL REFERENCES operators(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
