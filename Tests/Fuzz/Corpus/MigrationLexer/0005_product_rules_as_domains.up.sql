-- Products' format rules move from table CHECK constraints to domains, keeping their
-- names (the service maps them to field errors).
--
-- Why: PostgreSQL checks every CHECK constraint of a table on every UPDATE, whatever it
-- changes, and reads their expressions anew for each statement. Placing an order updates
-- only stock, yet ran the sku regex and measured the name and the description of each
-- product it took from. A domain's rule runs only when a value is assigned to the column
-- (INSERT, or an UPDATE that sets it) and is parsed once per session. The stock rule
-- stays on the table: it is the one an order's UPDATE must meet.
--
-- No rewrite: the columns are relabelled to constraint-free domains (binary-compatible,
-- so their indexes are kept), then each domain gets its rule, which PostgreSQL validates
-- with one scan of the table.
CREATE DOMAIN product_sku AS text;
CREATE DOMAIN product_name AS text;
CREATE DOMAIN product_description AS text;
CREATE DOMAIN product_price_cents AS bigint;
CREATE DOMAIN product_currency AS char(3);

-- A column named in a trigger's UPDATE OF cannot change type: the trigger is recreated
-- as it was (0004), within this migration's transaction.
DROP TRIGGER products_search_on_text_change ON products;

ALTER TABLE products
    DROP CONSTRAINT products_sku_format,
    DROP CONSTRAINT products_name_length,
    DROP CONSTRAINT products_description_length,
    DROP CONSTRAINT products_price_nonnegative,
    DROP CONSTRAINT products_currency_format,
    ALTER COLUMN sku TYPE product_sku,
    ALTER COLUMN name TYPE product_name,
    ALTER COLUMN description TYPE product_description,
    ALTER COLUMN price_cents TYPE product_price_cents,
    ALTER COLUMN currency TYPE product_currency;

CREATE TRIGGER products_search_on_text_change BEFORE UPDATE OF name, sku, description, search ON products
    FOR EACH ROW EXECUTE FUNCTION products_search_vector();

ALTER DOMAIN product_sku ADD CONSTRAINT products_sku_format CHECK (VALUE ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$');
ALTER DOMAIN product_name ADD CONSTRAINT products_name_length CHECK (char_length(VALUE) BETWEEN 1 AND 200);
ALTER DOMAIN product_description ADD CONSTRAINT products_description_length CHECK (char_length(VALUE) <= 10000);
ALTER DOMAIN product_price_cents ADD CONSTRAINT products_price_nonnegative CHECK (VALUE >= 0);
ALTER DOMAIN product_currency ADD CONSTRAINT products_currency_format CHECK (VALUE ~ '^[A-Z]{3}$');
