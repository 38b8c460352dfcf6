-- Stands for the table as production has it: busy, and not small.
CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    total_cents bigint NOT NULL
);
INSERT INTO orders (customer_id, total_cents)
SELECT g % 100, g FROM generate_series(1, 20000) AS g;
