-- API token scopes become read, write and admin (they named a resource before). Existing tokens
-- keep what they could do: users:write becomes admin, the other :write scopes write, the :read
-- ones read. Repeats ("read read") are collapsed when a token is read.
UPDATE api_tokens SET scopes =
  REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(scopes,
    'users:write', 'admin'),
    'matters:write', 'write'),
    'documents:write', 'write'),
    'messages:write', 'write'),
    'matters:read', 'read'),
    'documents:read', 'read'),
    'messages:read', 'read'),
    'users:read', 'read'),
    'audit:read', 'read');
