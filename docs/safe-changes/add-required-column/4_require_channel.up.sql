-- NOT VALID: checked for new and updated rows from now on, old rows not scanned; the
-- ACCESS EXCLUSIVE lock it takes is held for a moment only.
ALTER TABLE orders ADD CONSTRAINT orders_channel_not_null CHECK (channel IS NOT NULL) NOT VALID;
