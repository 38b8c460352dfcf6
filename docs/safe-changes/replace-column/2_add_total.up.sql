-- Expand: total_cents (bigint) becomes total (numeric(14, 2), in currency units). The
-- new column is filled for every write of the old binary by a trigger, so both binaries
-- can run side by side.
ALTER TABLE orders ADD COLUMN total numeric(14, 2);

CREATE FUNCTION orders_total_from_cents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.total := NEW.total_cents / 100.0;
    RETURN NEW;
END
$$;

CREATE TRIGGER orders_total_from_cents BEFORE INSERT OR UPDATE OF total_cents ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_total_from_cents();
