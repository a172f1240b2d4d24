-- Searching the audit log. `matter_id` names the matter an event concerns (the matter itself, or
-- one of its documents or messages), written with the event and covered by its hash (see
-- `StoredEvent::matter`); events written before this migration have none. Adding a nullable
-- column rewrites no row, so the append-only triggers are not involved.
ALTER TABLE audit_events ADD COLUMN matter_id TEXT;

-- Every search reads one chain in sequence order; each filter gets an index that keeps that order.
CREATE INDEX audit_events_by_actor ON audit_events (chain, actor, seq);
CREATE INDEX audit_events_by_action ON audit_events (chain, action, seq);
CREATE INDEX audit_events_by_matter ON audit_events (chain, matter_id, seq);
CREATE INDEX audit_events_by_time ON audit_events (chain, at);
