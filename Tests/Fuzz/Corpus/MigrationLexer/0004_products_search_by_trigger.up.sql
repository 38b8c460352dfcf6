-- Keep products.search up to date with a trigger instead of as a generated column.
-- PostgreSQL recomputes a stored generated column on every UPDATE, whatever it changes,
-- so each order re-stemmed the name and description of every product it took stock from
-- (about a quarter of the cost of a stock update, measured with pgbench). The trigger
-- fires only when name, sku or description are set. DROP EXPRESSION keeps the values
-- already computed, so nothing is rewritten and the index stays valid.
ALTER TABLE products ALTER COLUMN search DROP EXPRESSION;

CREATE FUNCTION products_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := setweight(to_tsvector('english', NEW.name), 'A')
               || setweight(to_tsvector('simple', NEW.sku), 'A')
               || setweight(to_tsvector('english', NEW.description), 'B');
    RETURN NEW;
END
$$;

CREATE TRIGGER products_search_on_insert BEFORE INSERT ON products
    FOR EACH ROW EXECUTE FUNCTION products_search_vector();
CREATE TRIGGER products_search_on_text_change BEFORE UPDATE OF name, sku, description, search ON products
    FOR EACH ROW EXECUTE FUNCTION products_search_vector();
