-- Failed sign-ins per account (wrong passwords and wrong second-factor codes), and the time
-- before which the next try is refused; hard_locked after 100 in a row until an admin unlocks.
ALTER TABLE users ADD COLUMN failed_logins BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT;
ALTER TABLE users ADD COLUMN hard_locked BIGINT NOT NULL DEFAULT 0;
