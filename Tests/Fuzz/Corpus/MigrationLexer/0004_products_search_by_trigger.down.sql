-- Back to the generated column: PostgreSQL 15 cannot turn a column back into a generated
-- one, so the column and its index are made anew (a rewrite of products).
DROP TRIGGER products_search_on_text_change ON products;
DROP TRIGGER products_search_on_insert ON products;
DROP FUNCTION products_search_vector();
DROP INDEX products_search_idx;
ALTER TABLE products DROP COLUMN search;
ALTER TABLE products ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', name), 'A')
    || setweight(to_tsvector('simple', sku), 'A')
    || setweight(to_tsvector('english', description), 'B')
) STORED;
CREATE INDEX products_search_idx ON products USING gin (search);
