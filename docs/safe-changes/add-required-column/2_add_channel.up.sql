-- Expand: a nullable column without a default is a catalog change, no rewrite. The
-- binary deployed with this file writes it; the binary before it does not know it.
ALTER TABLE orders ADD COLUMN channel text;
