DROP TRIGGER products_low_stock_event ON products;
DROP FUNCTION product_low_stock_event();
DROP TRIGGER order_status_history_event ON order_status_history;
DROP FUNCTION order_event();
DROP TABLE event_counter;
DROP TABLE events;
