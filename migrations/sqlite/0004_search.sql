-- Search: synonyms an admin manages, query analytics, and the product signals search ranks
-- by (rating, review count, sales count).
-- SQLite dialect of migrations/postgres/0004_search.sql. Keep the two files in step.

CREATE TABLE search_synonyms (
    id         BLOB        NOT NULL,
    kind       TEXT        NOT NULL CHECK (kind IN ('multi_way', 'one_way')),
    source     TEXT,
    terms      TEXT        NOT NULL,
    created_at TEXT        NOT NULL,
    CONSTRAINT search_synonyms_pkey PRIMARY KEY (id)
);

CREATE TABLE search_queries (
    query            TEXT        NOT NULL,
    searches         BIGINT      NOT NULL DEFAULT 0,
    zero_results     BIGINT      NOT NULL DEFAULT 0,
    last_results     BIGINT      NOT NULL DEFAULT 0,
    last_searched_at TEXT        NOT NULL,
    CONSTRAINT search_queries_pkey PRIMARY KEY (query)
);
CREATE INDEX search_queries_searches ON search_queries (searches);
CREATE INDEX search_queries_zero ON search_queries (zero_results) WHERE zero_results > 0;

CREATE TABLE product_signals (
    product_id   BLOB   NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    rating       DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (rating >= 0 AND rating <= 5),
    review_count BIGINT NOT NULL DEFAULT 0 CHECK (review_count >= 0),
    sales_count  BIGINT NOT NULL DEFAULT 0 CHECK (sales_count >= 0),
    updated_at   TEXT   NOT NULL,
    CONSTRAINT product_signals_pkey PRIMARY KEY (product_id)
);
