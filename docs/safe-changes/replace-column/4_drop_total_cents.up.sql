-- Contract, once every running binary reads and writes total only. Older binaries
-- would fail on the missing column, so they refuse to start from now on.
-- stockroom:breaks-older-binaries
DROP TRIGGER orders_total_from_cents ON orders;
DROP FUNCTION orders_total_from_cents();
ALTER TABLE orders DROP COLUMN total_cents;
