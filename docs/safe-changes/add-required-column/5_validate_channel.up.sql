-- The scan, under SHARE UPDATE EXCLUSIVE: reads and writes go on meanwhile.
ALTER TABLE orders VALIDATE CONSTRAINT orders_channel_not_null;
