-- Demo products for `make run`, so PRODUCT.LIST has something to show. Idempotent.
INSERT INTO products (sku, name, description, price_cents, currency, stock) VALUES
    ('MUG-01', 'Enamel mug', 'A white enamel camping mug, 350 ml.', 1250, 'EUR', 40),
    ('TEA-SENCHA', 'Sencha green tea', 'Loose-leaf Japanese green tea, 100 g.', 899, 'EUR', 120),
    ('KETTLE-1', 'Gooseneck kettle', 'Stovetop kettle with a thin spout for pour-over coffee.', 4500, 'EUR', 8),
    ('BEANS-ETH', 'Ethiopian coffee beans', 'Washed Yirgacheffe, light roast, 250 g.', 1399, 'EUR', 60),
    ('FILTER-02', 'Paper filters', 'One hundred size 02 paper filters.', 499, 'EUR', 3)
ON CONFLICT (sku) DO NOTHING;
