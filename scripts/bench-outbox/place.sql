-- ORDER.PLACE's statement (Sources/Stockroom/Repositories/OrderRepository.swift) for pgbench:
-- one line of one unit, no idempotency key, bound values as pgbench variables.
\set uid random(1, 2000)
\set pid random(1, 10000)
WITH request AS (
    SELECT r.product_id, r.quantity, r.line_no
    FROM unnest(ARRAY[:pid]::int8[], ARRAY[1]::int4[]) WITH ORDINALITY AS r (product_id, quantity, line_no)
),
existing AS (
    SELECT o.id FROM orders o WHERE o.user_id = :uid AND o.idempotency_key = NULL::text
),
locked AS MATERIALIZED (
    SELECT p.id, p.sku, p.name, p.price_cents, p.currency, p.stock, p.active
    FROM products p
    WHERE p.id = ANY(ARRAY[:pid]::int8[]) AND NOT EXISTS (SELECT 1 FROM existing)
    ORDER BY p.id
    FOR UPDATE
),
lines AS (
    SELECT r.line_no, r.product_id, r.quantity, l.id IS NOT NULL AS found, l.sku, l.name,
           l.price_cents, l.currency, l.stock, l.active, l.price_cents::numeric * r.quantity AS line_total
    FROM request r LEFT JOIN locked l ON l.id = r.product_id
),
verdict AS (
    SELECT NOT EXISTS (SELECT 1 FROM existing)
           AND bool_and(found AND active AND stock >= quantity)
           AND count(DISTINCT currency) = 1
           AND sum(line_total) <= 9223372036854775807 AS ok,
           min(currency) AS currency, sum(line_total) AS subtotal
    FROM lines
),
placed AS (
    INSERT INTO orders (user_id, currency, subtotal_cents, total_cents, idempotency_key, request_hash)
    SELECT :uid, v.currency, v.subtotal::int8, v.subtotal::int8, NULL::text, '\x00'::bytea
    FROM verdict v WHERE v.ok
    RETURNING id, status, currency, subtotal_cents, total_cents, created_at, updated_at
),
decremented AS (
    UPDATE products p SET stock = p.stock - l.quantity, updated_at = now()
    FROM lines l, placed
    WHERE p.id = l.product_id
),
placed_lines AS (
    INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price_cents, quantity, line_total_cents)
    SELECT placed.id, l.line_no, l.product_id, l.sku, l.name, l.price_cents, l.quantity, l.line_total::int8
    FROM lines l, placed
),
history AS (
    INSERT INTO order_status_history (order_id, status, changed_by)
    SELECT id, 'pending', :uid FROM placed
    RETURNING changed_at
)
SELECT l.line_no, (SELECT id FROM existing) AS existing_id, p.id AS order_id
FROM lines l LEFT JOIN placed p ON true;
