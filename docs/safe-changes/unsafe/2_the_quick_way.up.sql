-- What the recipes replace, as one would first write it. `migrate lint` objects to each
-- statement, and `migrate plan --rehearse` shows what it costs.
ALTER TABLE orders ADD COLUMN channel text NOT NULL DEFAULT 'web',
    ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE orders ALTER COLUMN total_cents TYPE numeric(14, 2);
ALTER TABLE orders RENAME COLUMN total_cents TO total;
CREATE INDEX orders_by_channel ON orders (channel);
