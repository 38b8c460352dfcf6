-- Signed webhooks (docs/EVENTS.md#webhooks): endpoints that want events, one delivery
-- per event and matching endpoint, and every HTTP attempt made for a delivery.
--
-- Delivery is at least once and in event order per endpoint: a worker leases only an
-- endpoint's oldest pending delivery (head-of-line), with FOR UPDATE SKIP LOCKED in a
-- short statement, and holds no transaction across the HTTP call. A lease that expires
-- (its worker died) makes the delivery claimable again.
CREATE TABLE webhook_endpoints (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url              text NOT NULL CONSTRAINT webhook_endpoints_url_format
                         CHECK (url ~ '^https?://' AND octet_length(url) <= 2048),
    -- Redis-style globs over event types (`order.*`).
    events           text[] NOT NULL CONSTRAINT webhook_endpoints_events_count
                         CHECK (cardinality(events) BETWEEN 1 AND 20),
    description      text NOT NULL DEFAULT '',
    -- `whsec_` + base64 of 32 random bytes: the HMAC key is the decoded bytes.
    secret           text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    disabled_at      timestamptz,
    disabled_reason  text,
    -- Dead deliveries in a row; a delivered one resets it.
    consecutive_dead integer NOT NULL DEFAULT 0
);

CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      bigint NOT NULL REFERENCES webhook_endpoints ON DELETE CASCADE,
    -- No foreign key: events are pruned after their retention, deliveries need not be.
    event_id         bigint NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                         CONSTRAINT webhook_deliveries_state CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- Set while a worker sends it; a lease past its expiry is free to take over.
    lease_token      text,
    lease_expires_at timestamptz,
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
-- The claim: each endpoint's oldest pending delivery, and the due ones among them.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- Pruning: finished deliveries past the retention, oldest first.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at) WHERE state <> 'pending';
-- WEBHOOK.DELIVERIES: an endpoint's deliveries, a page at a time.
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES webhook_deliveries ON DELETE CASCADE,
    started_at   timestamptz NOT NULL,
    -- NULL when no response came (connection refused, timeout).
    status_code  integer,
    latency_ms   integer NOT NULL,
    error        text
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);

-- The last event fanned out to endpoints: one row, advanced under its row lock, so
-- fan-out runs one at a time across workers and no event is fanned out twice. Starts at
-- the events numbered so far: webhooks begin with the events after this migration.
CREATE TABLE webhook_cursor (
    last_event_id  bigint NOT NULL,
    single         boolean PRIMARY KEY DEFAULT true CONSTRAINT webhook_cursor_single CHECK (single)
);
INSERT INTO webhook_cursor (last_event_id) SELECT last_id FROM event_counter;
