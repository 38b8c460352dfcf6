-- NOT VALID: new rows are checked at once; old rows are not scanned under the lock
-- (SHARE ROW EXCLUSIVE on both tables, which blocks their writes).
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
