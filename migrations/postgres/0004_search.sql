-- Search: synonyms an admin manages, query analytics, and the product signals search ranks
-- by (rating, review count, sales count). Reviews and orders, when built, write the signals
-- through the shop's `catalog::signals` operations, which also tell search.
--
-- All three are reference tables (no customer data): they do not carry a user id.

CREATE TABLE search_synonyms (
    id         UUID        NOT NULL,
    kind       TEXT        NOT NULL CHECK (kind IN ('multi_way', 'one_way')),
    -- One-way rules: the phrase that expands; NULL for multi-way groups.
    source     TEXT,
    -- JSON array of phrases: the group, or the one-way targets.
    terms      JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT search_synonyms_pkey PRIMARY KEY (id)
);

-- One row per normalized query, aggregated by the node that served it (batched upserts).
CREATE TABLE search_queries (
    query            TEXT        NOT NULL,
    searches         BIGINT      NOT NULL DEFAULT 0,
    zero_results     BIGINT      NOT NULL DEFAULT 0,
    last_results     BIGINT      NOT NULL DEFAULT 0,
    last_searched_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT search_queries_pkey PRIMARY KEY (query)
);
CREATE INDEX search_queries_searches ON search_queries (searches);
CREATE INDEX search_queries_zero ON search_queries (zero_results) WHERE zero_results > 0;

CREATE TABLE product_signals (
    product_id   UUID             NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    rating       DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (rating >= 0 AND rating <= 5),
    review_count BIGINT           NOT NULL DEFAULT 0 CHECK (review_count >= 0),
    sales_count  BIGINT           NOT NULL DEFAULT 0 CHECK (sales_count >= 0),
    updated_at   TIMESTAMPTZ      NOT NULL,
    CONSTRAINT product_signals_pkey PRIMARY KEY (product_id)
);
