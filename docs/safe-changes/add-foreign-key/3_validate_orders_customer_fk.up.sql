-- The scan, under SHARE UPDATE EXCLUSIVE on orders: its reads and writes go on.
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
