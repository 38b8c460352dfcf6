-- Back to plain columns with table CHECK constraints. The values met the domains' rules,
-- so they meet the same rules as constraints; the types change without a rewrite.
DROP TRIGGER products_search_on_text_change ON products;

ALTER TABLE products
    ALTER COLUMN sku TYPE text,
    ALTER COLUMN name TYPE text,
    ALTER COLUMN description TYPE text,
    ALTER COLUMN price_cents TYPE bigint,
    ALTER COLUMN currency TYPE char(3),
    ADD CONSTRAINT products_sku_format CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    ADD CONSTRAINT products_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    ADD CONSTRAINT products_description_length CHECK (char_length(description) <= 10000),
    ADD CONSTRAINT products_price_nonnegative CHECK (price_cents >= 0),
    ADD CONSTRAINT products_currency_format CHECK (currency ~ '^[A-Z]{3}$');

CREATE TRIGGER products_search_on_text_change BEFORE UPDATE OF name, sku, description, search ON products
    FOR EACH ROW EXECUTE FUNCTION products_search_vector();

DROP DOMAIN product_sku, product_name, product_description, product_price_cents, product_currency;
