DROP TABLE order_status_history;
DROP TABLE order_lines;
DROP TABLE orders;
