-- Payments through a processor (ORDER.CHECKOUT, docs/EVENTS.md#payments), and the jobs
-- the outbox hands to the outside world: refunds and e-mails.

-- One payment per order, created by ORDER.CHECKOUT before the processor is asked, so the
-- Idempotency-Key it sends survives a crash between the processor's answer and ours: the
-- checkout retried gets the same PaymentIntent back instead of a second one.
CREATE TABLE payments (
    order_id         bigint PRIMARY KEY REFERENCES orders (id) ON DELETE CASCADE,
    idempotency_key  uuid NOT NULL DEFAULT gen_random_uuid(),
    -- The processor's PaymentIntent (pi_…) and the secret its client-side confirmation
    -- needs, once the processor answered.
    intent_id        text CONSTRAINT payments_intent_unique UNIQUE,
    client_secret    text,
    amount_cents     bigint NOT NULL CONSTRAINT payments_amount_positive CHECK (amount_cents > 0),
    currency         char(3) NOT NULL,
    status           text NOT NULL DEFAULT 'created'
                     CONSTRAINT payments_status_valid CHECK (status IN ('created', 'succeeded', 'refund_pending', 'refunded')),
    refund_id        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    succeeded_at     timestamptz,
    refunded_at      timestamptz
);

-- The processor's webhook events already applied (evt_…): one delivered twice is
-- acknowledged, not applied twice. Kept for a while, then pruned: a processor stops
-- retrying after days, and a payment succeeds once whatever the events say.
CREATE TABLE payment_events (
    id           text PRIMARY KEY,
    type         text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_events_by_age ON payment_events USING brin (received_at);

-- Work for the outside world, written in the transaction of the change that calls for
-- it, at most one per kind and order. A worker leases due jobs with FOR UPDATE SKIP
-- LOCKED in a short statement and holds no transaction across the SMTP or HTTP call; a
-- lease that expires (its worker died) makes the job claimable again.
CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL CONSTRAINT jobs_kind_valid
                     CHECK (kind IN ('payment.refund', 'mail.order_confirmation', 'mail.shipping_notice')),
    order_id         bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- Stable across attempts: a refund's Idempotency-Key, an e-mail's Message-ID.
    idempotency_key  uuid NOT NULL DEFAULT gen_random_uuid(),
    state            text NOT NULL DEFAULT 'pending' CONSTRAINT jobs_state_valid CHECK (state IN ('pending', 'done', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_token      text,
    lease_expires_at timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT jobs_once_per_order UNIQUE (kind, order_id)
);
CREATE INDEX jobs_due ON jobs (next_attempt_at) WHERE state = 'pending';
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state <> 'pending';
CREATE INDEX jobs_order_id_idx ON jobs (order_id);

-- paid → the confirmation e-mail; shipped → the shipping notice; cancelled with a
-- payment the processor took → its refund. In the transaction of the change, whoever
-- makes it; placing an order (the hot path) does not even call the function.
CREATE FUNCTION order_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'paid' THEN
        INSERT INTO jobs (kind, order_id) VALUES ('mail.order_confirmation', NEW.order_id) ON CONFLICT DO NOTHING;
    ELSIF NEW.status = 'shipped' THEN
        INSERT INTO jobs (kind, order_id) VALUES ('mail.shipping_notice', NEW.order_id) ON CONFLICT DO NOTHING;
    ELSE
        WITH refund AS (
            UPDATE payments SET status = 'refund_pending' WHERE order_id = NEW.order_id AND status = 'succeeded' RETURNING order_id
        )
        INSERT INTO jobs (kind, order_id) SELECT 'payment.refund', order_id FROM refund ON CONFLICT DO NOTHING;
    END IF;
    PERFORM pg_notify('stockroom_jobs', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER order_status_history_jobs AFTER INSERT ON order_status_history
    FOR EACH ROW WHEN (NEW.status IN ('paid', 'shipped', 'cancelled'))
    EXECUTE FUNCTION order_jobs();
