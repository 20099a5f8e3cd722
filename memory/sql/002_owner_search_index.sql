-- Full-text search always runs inside one user's scope: index (user_id, scope, search)
-- together, so a common word in other users' rows costs nothing (btree_gin is a trusted
-- contrib extension, available to a database owner since PostgreSQL 13).
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX exchanges_owner_search ON exchanges USING gin (user_id, scope, search);
DROP INDEX IF EXISTS exchanges_search;
