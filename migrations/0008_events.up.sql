-- The transactional outbox: every change other services must hear of, written by a
-- trigger in the transaction of the change itself, so the two commit together or not at
-- all, whoever makes the change (the service, a library user, psql).
--
-- Events are numbered after they commit. A transaction takes its `seq` when it writes
-- the event, which may be long before it commits, so `seq` is not the order in which
-- events become visible: a reader that went by it could pass an event that commits
-- later with a smaller number, and never see it. The sequencer (EventRepository.sequence,
-- run by every `stockroom serve`) gives committed events their public `id` in one
-- statement under the lock of a one-row counter, in `seq` order: a reader that saw id N
-- has seen every event below N, and one that reconnects with "after N" misses nothing.
CREATE TABLE events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          bigint,
    type        text NOT NULL CONSTRAINT events_type_format CHECK (type ~ '^[a-z_]+\.[a-z_]+$'),
    subject_id  bigint NOT NULL,
    -- Whom it concerns: the order's owner; NULL for catalogue events (admins only).
    user_id     bigint,
    -- Order events: the order_status_history row of the change. Lines and history rows
    -- never change once written, so the order as it was at this event is read back from
    -- them (EventRepository) instead of being copied here on the order's hot path.
    history_id  bigint,
    -- Catalogue events: a snapshot of the product, which does change.
    payload     jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_have_a_subject CHECK (history_id IS NOT NULL OR payload IS NOT NULL)
);
-- Only numbered events are unique by id: the write pays for no entry until then.
CREATE UNIQUE INDEX events_id_unique ON events (id) WHERE id IS NOT NULL;
CREATE INDEX events_unnumbered ON events (seq) WHERE id IS NULL;
CREATE INDEX events_by_user ON events (user_id, id) WHERE id IS NOT NULL;
-- Pruning by age over an append-only table: a BRIN index costs next to nothing to keep.
CREATE INDEX events_by_age ON events USING brin (created_at);

-- The last id given: one row, written only by the sequencer.
CREATE TABLE event_counter (
    last_id  bigint NOT NULL,
    single   boolean PRIMARY KEY DEFAULT true CONSTRAINT event_counter_single CHECK (single)
);
INSERT INTO event_counter (last_id) VALUES (0);

-- order.placed, .paid, .shipped, .delivered, .cancelled: every state an order enters
-- writes a history row, placing included (as 'pending'). The event names that row.
CREATE FUNCTION order_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, subject_id, user_id, history_id)
    SELECT 'order.' || CASE NEW.status WHEN 'pending' THEN 'placed' ELSE NEW.status END, o.id, o.user_id, NEW.id
    FROM orders o WHERE o.id = NEW.order_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER order_status_history_event AFTER INSERT ON order_status_history
    FOR EACH ROW EXECUTE FUNCTION order_event();

-- product.low_stock: stock falls to or below the threshold, from above it. The threshold
-- is the setting stockroom.low_stock_threshold (the service sets it on its connections
-- from --low-stock-threshold; `ALTER DATABASE … SET` sets it for everyone), 5 if unset.
-- Spelled out in the trigger's WHEN rather than called as a function: a function call
-- there costs a tenth of an order's throughput, since every order updates stock.
CREATE FUNCTION product_low_stock_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, subject_id, user_id, payload)
    VALUES ('product.low_stock', NEW.id, NULL, jsonb_build_object(
        'id', NEW.id, 'sku', NEW.sku, 'name', NEW.name, 'description', NEW.description,
        'priceCents', NEW.price_cents, 'currency', NEW.currency, 'stock', NEW.stock, 'active', NEW.active,
        'createdAt', extract(epoch FROM NEW.created_at), 'updatedAt', extract(epoch FROM NEW.updated_at),
        'threshold', coalesce(nullif(current_setting('stockroom.low_stock_threshold', true), '')::integer, 5)));
    RETURN NULL;
END
$$;

CREATE TRIGGER products_low_stock_event AFTER UPDATE OF stock ON products
    FOR EACH ROW WHEN (
        NEW.stock < OLD.stock
        AND NEW.stock <= coalesce(nullif(current_setting('stockroom.low_stock_threshold', true), '')::integer, 5)
        AND OLD.stock > coalesce(nullif(current_setting('stockroom.low_stock_threshold', true), '')::integer, 5))
    EXECUTE FUNCTION product_low_stock_event();
