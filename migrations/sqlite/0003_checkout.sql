-- SQLite dialect of migrations/postgres/0003_checkout.sql. Keep the two files in step.
-- Checkout: carts, FX rates, coupons, tax rates, shipping methods, orders with per-seller
-- fulfilment groups, payments, refunds, returns and provider events.
--
-- Carts, orders, payments and their children grow with customers: user_id leads every
-- primary and unique key (guest carts use the nil user id). Coupons, rates and shipping
-- methods are small reference tables.

CREATE TABLE fx_rates (
    currency   TEXT        NOT NULL CHECK (length(currency) = 3),
    -- Units of `currency` per unit of the shop's base currency, scaled by 10^9.
    rate_e9    BIGINT      NOT NULL CHECK (rate_e9 > 0),
    updated_at TEXT        NOT NULL,
    CONSTRAINT fx_rates_pkey PRIMARY KEY (currency)
);

CREATE TABLE tax_rates (
    id            BLOB        NOT NULL,
    country       TEXT        NOT NULL CHECK (length(country) = 2),
    -- '' for the whole country; a region code overrides it.
    region        TEXT        NOT NULL DEFAULT '',
    name          TEXT        NOT NULL,
    basis_points  BIGINT      NOT NULL CHECK (basis_points >= 0 AND basis_points <= 10000),
    created_at    TEXT        NOT NULL,
    CONSTRAINT tax_rates_pkey PRIMARY KEY (id),
    CONSTRAINT tax_rates_place_key UNIQUE (country, region)
);

CREATE TABLE shipping_methods (
    id                   BLOB        NOT NULL,
    code                 TEXT        NOT NULL,
    name                 TEXT        NOT NULL,
    -- ISO country codes the method serves, comma-separated; '*' serves everywhere.
    countries            TEXT        NOT NULL,
    rate_minor           BIGINT      NOT NULL CHECK (rate_minor >= 0),
    currency             TEXT        NOT NULL CHECK (length(currency) = 3),
    free_over_minor      BIGINT      CHECK (free_over_minor >= 0),
    active               INTEGER     NOT NULL DEFAULT 1,
    created_at           TEXT        NOT NULL,
    CONSTRAINT shipping_methods_pkey PRIMARY KEY (id),
    CONSTRAINT shipping_methods_code_key UNIQUE (code)
);

CREATE TABLE coupons (
    id                 BLOB        NOT NULL,
    code               TEXT        NOT NULL,
    kind               TEXT        NOT NULL CHECK (kind IN ('percent', 'fixed')),
    -- Basis points for 'percent', minor units of `currency` for 'fixed'.
    amount             BIGINT      NOT NULL CHECK (amount > 0),
    currency           TEXT        CHECK (length(currency) = 3),
    min_subtotal_minor BIGINT      NOT NULL DEFAULT 0 CHECK (min_subtotal_minor >= 0),
    starts_at          TEXT       ,
    ends_at            TEXT       ,
    usage_limit        BIGINT      CHECK (usage_limit > 0),
    per_customer_limit BIGINT      CHECK (per_customer_limit > 0),
    stackable          INTEGER     NOT NULL DEFAULT 0,
    times_used         BIGINT      NOT NULL DEFAULT 0,
    batch              TEXT,
    created_at         TEXT        NOT NULL,
    CONSTRAINT coupons_pkey PRIMARY KEY (id),
    CONSTRAINT coupons_code_key UNIQUE (code),
    -- The database itself refuses a redemption beyond the limit, whatever the race.
    CONSTRAINT coupons_usage_check CHECK (usage_limit IS NULL OR times_used <= usage_limit)
);

CREATE TABLE coupon_customer_uses (
    user_id   BLOB   NOT NULL,
    coupon_id BLOB   NOT NULL REFERENCES coupons (id),
    uses      BIGINT NOT NULL CHECK (uses >= 0),
    CONSTRAINT coupon_customer_uses_pkey PRIMARY KEY (user_id, coupon_id)
);

CREATE TABLE carts (
    user_id             BLOB        NOT NULL,
    id                  BLOB        NOT NULL,
    -- SHA-256 of the guest's cart token; the token itself is never stored.
    token_hash          BLOB        NOT NULL,
    status              TEXT        NOT NULL CHECK (status IN ('open', 'merged', 'checked_out')),
    currency            TEXT        NOT NULL CHECK (length(currency) = 3),
    fx_rate_e9          BIGINT      NOT NULL CHECK (fx_rate_e9 > 0),
    prices_locked_until TEXT        NOT NULL,
    coupon_codes        TEXT        NOT NULL DEFAULT '',
    created_at          TEXT        NOT NULL,
    updated_at          TEXT        NOT NULL,
    CONSTRAINT carts_pkey PRIMARY KEY (user_id, id)
);
CREATE INDEX carts_by_id ON carts (id);
CREATE INDEX carts_open ON carts (user_id, updated_at) WHERE status = 'open';

CREATE TABLE cart_items (
    user_id          BLOB        NOT NULL,
    cart_id          BLOB        NOT NULL,
    id               BLOB        NOT NULL,
    variant_id       BLOB        NOT NULL REFERENCES variants (id),
    quantity         BIGINT      NOT NULL CHECK (quantity > 0),
    -- The unit price locked for the cart, in the cart's currency.
    unit_price_minor BIGINT      NOT NULL CHECK (unit_price_minor >= 0),
    created_at       TEXT        NOT NULL,
    CONSTRAINT cart_items_pkey PRIMARY KEY (user_id, cart_id, id),
    CONSTRAINT cart_items_variant_key UNIQUE (user_id, cart_id, variant_id),
    CONSTRAINT cart_items_cart_fkey FOREIGN KEY (user_id, cart_id)
        REFERENCES carts (user_id, id) ON DELETE CASCADE
);

CREATE TABLE orders (
    user_id          BLOB        NOT NULL REFERENCES users (id),
    id               BLOB        NOT NULL,
    cart_id          BLOB        NOT NULL,
    email            TEXT        NOT NULL,
    status           TEXT        NOT NULL CHECK (status IN ('pending_payment', 'paid', 'partially_fulfilled', 'fulfilled', 'delivered', 'cancelled', 'partially_refunded', 'refunded')),
    currency         TEXT        NOT NULL CHECK (length(currency) = 3),
    fx_rate_e9       BIGINT      NOT NULL,
    subtotal_minor   BIGINT      NOT NULL,
    discount_minor   BIGINT      NOT NULL,
    shipping_minor   BIGINT      NOT NULL,
    tax_minor        BIGINT      NOT NULL,
    total_minor      BIGINT      NOT NULL CHECK (total_minor >= 0),
    refunded_minor   BIGINT      NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= total_minor),
    tax_mode         TEXT        NOT NULL,
    coupon_codes     TEXT        NOT NULL DEFAULT '',
    shipping_method  TEXT        NOT NULL,
    shipping_address TEXT        NOT NULL,
    reservation_id   BLOB        NOT NULL,
    cancel_reason    TEXT,
    created_at       TEXT        NOT NULL,
    updated_at       TEXT        NOT NULL,
    paid_at          TEXT       ,
    CONSTRAINT orders_pkey PRIMARY KEY (user_id, id)
);
-- One live order per cart: a double submit cannot create a second order (a cancelled order
-- reopens its cart for another try).
CREATE UNIQUE INDEX orders_one_live_per_cart ON orders (user_id, cart_id) WHERE status <> 'cancelled';
CREATE INDEX orders_by_id ON orders (id);
CREATE INDEX orders_by_status ON orders (status, created_at);
CREATE INDEX orders_by_email ON orders (email);

CREATE TABLE order_lines (
    user_id          BLOB   NOT NULL,
    order_id         BLOB   NOT NULL,
    line_no          INTEGER NOT NULL,
    variant_id       BLOB   NOT NULL REFERENCES variants (id),
    product_id       BLOB   NOT NULL,
    seller_id        BLOB   NOT NULL,
    sku              TEXT   NOT NULL,
    title            TEXT   NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT NOT NULL,
    discount_minor   BIGINT NOT NULL,
    tax_minor        BIGINT NOT NULL,
    total_minor      BIGINT NOT NULL,
    CONSTRAINT order_lines_pkey PRIMARY KEY (user_id, order_id, line_no),
    CONSTRAINT order_lines_order_fkey FOREIGN KEY (user_id, order_id)
        REFERENCES orders (user_id, id) ON DELETE CASCADE
);
CREATE INDEX order_lines_by_seller ON order_lines (seller_id, order_id);
CREATE INDEX order_lines_by_product ON order_lines (product_id);

-- One fulfilment group per seller of an order.
CREATE TABLE fulfilments (
    user_id      BLOB        NOT NULL,
    order_id     BLOB        NOT NULL,
    seller_id    BLOB        NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('pending', 'shipped', 'delivered', 'cancelled')),
    carrier      TEXT,
    tracking     TEXT,
    shipped_at   TEXT       ,
    delivered_at TEXT       ,
    CONSTRAINT fulfilments_pkey PRIMARY KEY (user_id, order_id, seller_id),
    CONSTRAINT fulfilments_order_fkey FOREIGN KEY (user_id, order_id)
        REFERENCES orders (user_id, id) ON DELETE CASCADE
);

CREATE TABLE payments (
    user_id        BLOB        NOT NULL,
    id             BLOB        NOT NULL,
    order_id       BLOB        NOT NULL,
    provider       TEXT        NOT NULL,
    provider_ref   TEXT,
    status         TEXT        NOT NULL CHECK (status IN ('pending', 'requires_action', 'processing', 'succeeded', 'failed', 'voided', 'partially_refunded', 'refunded')),
    amount_minor   BIGINT      NOT NULL CHECK (amount_minor >= 0),
    refunded_minor BIGINT      NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
    currency       TEXT        NOT NULL CHECK (length(currency) = 3),
    -- Only the gateway's token, the card brand and the last four digits: never a card number.
    card_token     TEXT,
    card_brand     TEXT,
    card_last4     TEXT CHECK (card_last4 IS NULL OR length(card_last4) = 4),
    failure_code   TEXT,
    created_at     TEXT        NOT NULL,
    updated_at     TEXT        NOT NULL,
    CONSTRAINT payments_pkey PRIMARY KEY (user_id, id),
    CONSTRAINT payments_order_fkey FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id)
);
-- At most one successful payment per order.
CREATE UNIQUE INDEX payments_one_success ON payments (user_id, order_id)
    WHERE status IN ('succeeded', 'partially_refunded', 'refunded');
CREATE INDEX payments_by_order ON payments (order_id, status);
CREATE INDEX payments_open ON payments (status, updated_at)
    WHERE status IN ('pending', 'requires_action', 'processing');
CREATE INDEX payments_by_ref ON payments (provider, provider_ref);

-- Provider events applied, by the provider's event id: a webhook is applied once.
CREATE TABLE payment_events (
    user_id    BLOB        NOT NULL,
    provider   TEXT        NOT NULL,
    event_id   TEXT        NOT NULL,
    payment_id BLOB        NOT NULL,
    kind       TEXT        NOT NULL,
    applied_at TEXT        NOT NULL,
    CONSTRAINT payment_events_pkey PRIMARY KEY (user_id, provider, event_id)
);

CREATE TABLE refunds (
    user_id      BLOB        NOT NULL,
    id           BLOB        NOT NULL,
    payment_id   BLOB        NOT NULL,
    order_id     BLOB        NOT NULL,
    amount_minor BIGINT      NOT NULL CHECK (amount_minor > 0),
    reason       TEXT        NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    provider_ref TEXT,
    created_at   TEXT        NOT NULL,
    CONSTRAINT refunds_pkey PRIMARY KEY (user_id, id),
    CONSTRAINT refunds_payment_fkey FOREIGN KEY (user_id, payment_id) REFERENCES payments (user_id, id)
);

CREATE TABLE returns (
    user_id      BLOB        NOT NULL,
    id           BLOB        NOT NULL,
    order_id     BLOB        NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('requested', 'approved', 'rejected', 'received', 'refunded')),
    -- [{line_no, quantity}]
    lines        TEXT        NOT NULL,
    reason       TEXT        NOT NULL,
    amount_minor BIGINT      NOT NULL CHECK (amount_minor >= 0),
    created_at   TEXT        NOT NULL,
    updated_at   TEXT        NOT NULL,
    CONSTRAINT returns_pkey PRIMARY KEY (user_id, id),
    CONSTRAINT returns_order_fkey FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id)
);
