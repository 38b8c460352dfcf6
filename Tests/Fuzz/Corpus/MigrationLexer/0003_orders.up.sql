-- Orders, their lines (with a snapshot of what was bought at what price) and the
-- history of their states.
CREATE TABLE orders (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          bigint NOT NULL REFERENCES users (id),
    status           text NOT NULL DEFAULT 'pending'
                     CONSTRAINT orders_status_valid CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    currency         char(3) NOT NULL CONSTRAINT orders_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    subtotal_cents   bigint NOT NULL CONSTRAINT orders_subtotal_nonnegative CHECK (subtotal_cents >= 0),
    total_cents      bigint NOT NULL CONSTRAINT orders_total_nonnegative CHECK (total_cents >= 0),
    idempotency_key  text CONSTRAINT orders_idempotency_key_length CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
    -- SHA-256 of the normalized request, to tell a replay from a different order
    -- that reuses the key.
    request_hash     bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_idempotency_key_unique UNIQUE (user_id, idempotency_key)
);
CREATE INDEX orders_user_id_idx ON orders (user_id, id);
CREATE INDEX orders_status_idx ON orders (status, id);

CREATE TABLE order_lines (
    order_id          bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no           integer NOT NULL,
    product_id        bigint NOT NULL REFERENCES products (id),
    sku               text NOT NULL,
    name              text NOT NULL,
    unit_price_cents  bigint NOT NULL CONSTRAINT order_lines_price_nonnegative CHECK (unit_price_cents >= 0),
    quantity          integer NOT NULL CONSTRAINT order_lines_quantity_positive CHECK (quantity > 0),
    line_total_cents  bigint NOT NULL,
    PRIMARY KEY (order_id, line_no),
    CONSTRAINT order_lines_product_once UNIQUE (order_id, product_id),
    CONSTRAINT order_lines_total_matches CHECK (line_total_cents = unit_price_cents * quantity)
);
CREATE INDEX order_lines_product_id_idx ON order_lines (product_id);

CREATE TABLE order_status_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status      text NOT NULL CONSTRAINT order_status_history_status_valid
                CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    changed_by  bigint REFERENCES users (id),
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_status_history_order_id_idx ON order_status_history (order_id, id);
