-- stockroom:no-transaction
-- Backfill in batches of 5,000, each committed on its own: no long transaction, and
-- each batch locks only its rows. (A DO block may COMMIT when it runs outside a
-- transaction, which this file does.)
DO $$
DECLARE
    updated bigint;
BEGIN
    LOOP
        UPDATE orders SET channel = 'web'
        WHERE id IN (SELECT id FROM orders WHERE channel IS NULL LIMIT 5000);
        GET DIAGNOSTICS updated = ROW_COUNT;
        EXIT WHEN updated = 0;
        COMMIT;
    END LOOP;
END
$$;
