-- Inventory: low-stock thresholds, reservations (all-or-nothing across lines, allocated across
-- SQLite dialect of migrations/postgres/0002_inventory.sql. Keep the two files in step.
-- locations, expiring), and flash sales with earmarked stock.
--
-- Reservations grow with customers: user_id leads every primary and unique key.

ALTER TABLE variants ADD COLUMN low_stock_threshold BIGINT CHECK (low_stock_threshold >= 0);

CREATE TABLE flash_sales (
    id                 BLOB        NOT NULL,
    variant_id         BLOB        NOT NULL REFERENCES variants (id),
    price_minor        BIGINT      NOT NULL CHECK (price_minor >= 0),
    currency           TEXT        NOT NULL CHECK (length(currency) = 3),
    starts_at          TEXT        NOT NULL,
    ends_at            TEXT        NOT NULL,
    quantity           BIGINT      NOT NULL CHECK (quantity > 0),
    -- Units still earmarked for the sale and not held by a shopper's reservation.
    remaining          BIGINT      NOT NULL,
    per_customer_limit BIGINT      NOT NULL CHECK (per_customer_limit > 0),
    location_id        BLOB        NOT NULL REFERENCES stock_locations (id),
    closed_at          TEXT       ,
    created_at         TEXT        NOT NULL,
    CONSTRAINT flash_sales_pkey PRIMARY KEY (id),
    CONSTRAINT flash_sales_window CHECK (ends_at > starts_at),
    CONSTRAINT flash_sales_remaining_check CHECK (remaining >= 0 AND remaining <= quantity)
);

CREATE TABLE reservations (
    user_id       BLOB        NOT NULL REFERENCES users (id),
    id            BLOB        NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('active', 'committed', 'released', 'expired')),
    flash_sale_id BLOB REFERENCES flash_sales (id),
    expires_at    TEXT        NOT NULL,
    created_at    TEXT        NOT NULL,
    updated_at    TEXT        NOT NULL,
    CONSTRAINT reservations_pkey PRIMARY KEY (user_id, id)
);
CREATE INDEX reservations_expiry ON reservations (expires_at) WHERE status = 'active';

-- One row per (reservation, SKU, location): a line may be allocated across locations.
CREATE TABLE reservation_lines (
    user_id        BLOB    NOT NULL,
    reservation_id BLOB    NOT NULL,
    variant_id     BLOB    NOT NULL REFERENCES variants (id),
    location_id    BLOB    NOT NULL REFERENCES stock_locations (id),
    quantity       BIGINT  NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT,
    currency       TEXT,
    active         INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT reservation_lines_pkey PRIMARY KEY (user_id, reservation_id, variant_id, location_id),
    CONSTRAINT reservation_lines_reservation_fkey FOREIGN KEY (user_id, reservation_id)
        REFERENCES reservations (user_id, id) ON DELETE CASCADE
);

-- A customer holds at most one active reservation per SKU.
CREATE TABLE reservation_holds (
    user_id        BLOB NOT NULL,
    variant_id     BLOB NOT NULL REFERENCES variants (id),
    reservation_id BLOB NOT NULL,
    CONSTRAINT reservation_holds_pkey PRIMARY KEY (user_id, variant_id),
    CONSTRAINT reservation_holds_reservation_fkey FOREIGN KEY (user_id, reservation_id)
        REFERENCES reservations (user_id, id) ON DELETE CASCADE
);

-- Units a customer has taken from a flash sale (for the per-customer limit).
CREATE TABLE flash_sale_purchases (
    user_id       BLOB   NOT NULL,
    flash_sale_id BLOB   NOT NULL REFERENCES flash_sales (id),
    quantity      BIGINT NOT NULL CHECK (quantity >= 0),
    CONSTRAINT flash_sale_purchases_pkey PRIMARY KEY (user_id, flash_sale_id)
);
