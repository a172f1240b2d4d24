-- WebAuthn second factors. `credential` is webauthn-rs's passkey record as JSON (public key,
-- signature counter, flags); `credential_id` is its base64url id, unique across all tenants,
-- since an authenticator makes a fresh one per registration.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys (tenant_id, user_id);

-- Ceremonies waiting for the browser's answer (registration, sign-in, step-up), kept in the
-- database so any node can finish what another started. Each is taken once.
CREATE TABLE webauthn_challenges (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_challenges_user ON webauthn_challenges (tenant_id, user_id);
