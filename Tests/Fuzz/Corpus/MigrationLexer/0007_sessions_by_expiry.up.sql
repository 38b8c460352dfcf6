-- stockroom:no-transaction
-- The server purges expired sessions in batches, by expiry: this keeps each batch from
-- scanning the table. Built CONCURRENTLY, so logins go on while it is built.
CREATE INDEX CONCURRENTLY IF NOT EXISTS sessions_expires_at_idx ON sessions (expires_at);
