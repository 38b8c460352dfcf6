DROP TRIGGER order_status_history_jobs ON order_status_history;
DROP FUNCTION order_jobs();
DROP TABLE jobs;
DROP TABLE payment_events;
DROP TABLE payments;
