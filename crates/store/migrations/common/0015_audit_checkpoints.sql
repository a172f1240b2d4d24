-- Signed checkpoints of the audit chains: chain `chain` had `hash` at event `seq`, signed with
-- the audit signing key (kept outside the database; only its id is stored here).
CREATE TABLE audit_checkpoints (
    chain     TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL,
    signed_at BIGINT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
