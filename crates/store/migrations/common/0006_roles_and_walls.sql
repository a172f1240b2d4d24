-- Ethical walls: a restricted matter is seen only by the users on its list.
ALTER TABLE matters ADD COLUMN restricted BIGINT NOT NULL DEFAULT 0;
CREATE INDEX matter_members_matter ON matter_members (tenant_id, matter_id, user_id);
