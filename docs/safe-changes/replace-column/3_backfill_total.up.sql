-- stockroom:no-transaction
-- The rows written before the trigger, in committed batches.
DO $$
DECLARE
    updated bigint;
BEGIN
    LOOP
        UPDATE orders SET total = total_cents / 100.0
        WHERE id IN (SELECT id FROM orders WHERE total IS NULL LIMIT 5000);
        GET DIAGNOSTICS updated = ROW_COUNT;
        EXIT WHEN updated = 0;
        COMMIT;
    END LOOP;
END
$$;
