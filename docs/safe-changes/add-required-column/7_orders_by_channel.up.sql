-- stockroom:no-transaction
-- Alone in its file: CONCURRENTLY cannot run in a transaction, and a failed one-statement
-- file is recovered by the runner (an invalid index is dropped and built again).
CREATE INDEX CONCURRENTLY orders_by_channel ON orders (channel);
