-- Products. Prices are integers in minor units (cents) of an ISO 4217 currency; the
-- database keeps stock from going negative, whatever the application does.
CREATE TABLE products (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku          text NOT NULL CONSTRAINT products_sku_unique UNIQUE
                 CONSTRAINT products_sku_format CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name         text NOT NULL CONSTRAINT products_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    description  text NOT NULL DEFAULT '' CONSTRAINT products_description_length CHECK (char_length(description) <= 10000),
    price_cents  bigint NOT NULL CONSTRAINT products_price_nonnegative CHECK (price_cents >= 0),
    currency     char(3) NOT NULL CONSTRAINT products_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    stock        integer NOT NULL DEFAULT 0 CONSTRAINT products_stock_nonnegative CHECK (stock >= 0),
    active       boolean NOT NULL DEFAULT true,
    -- Full-text search over name (weight A), sku and description (B).
    search       tsvector GENERATED ALWAYS AS (
                     setweight(to_tsvector('english', name), 'A')
                     || setweight(to_tsvector('simple', sku), 'A')
                     || setweight(to_tsvector('english', description), 'B')
                 ) STORED,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_search_idx ON products USING gin (search);
