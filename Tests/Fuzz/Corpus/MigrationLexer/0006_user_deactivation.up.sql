-- Users can be deactivated: they can no longer log in, and their sessions end. The row
-- stays, so their orders keep their owner. A nullable column with no default: adding it
-- rewrites nothing and holds ACCESS EXCLUSIVE on users only for the catalogue change.
ALTER TABLE users ADD COLUMN deactivated_at timestamptz;
