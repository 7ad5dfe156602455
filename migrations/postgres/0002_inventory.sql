-- Inventory: low-stock thresholds, reservations (all-or-nothing across lines, allocated across
-- locations, expiring), and flash sales with earmarked stock.
--
-- Reservations grow with customers: user_id leads every primary and unique key.

ALTER TABLE variants ADD COLUMN low_stock_threshold BIGINT CHECK (low_stock_threshold >= 0);

CREATE TABLE flash_sales (
    id                 UUID        NOT NULL,
    variant_id         UUID        NOT NULL REFERENCES variants (id),
    price_minor        BIGINT      NOT NULL CHECK (price_minor >= 0),
    currency           TEXT        NOT NULL CHECK (length(currency) = 3),
    starts_at          TIMESTAMPTZ NOT NULL,
    ends_at            TIMESTAMPTZ NOT NULL,
    quantity           BIGINT      NOT NULL CHECK (quantity > 0),
    -- Units still earmarked for the sale and not held by a shopper's reservation.
    remaining          BIGINT      NOT NULL,
    per_customer_limit BIGINT      NOT NULL CHECK (per_customer_limit > 0),
    location_id        UUID        NOT NULL REFERENCES stock_locations (id),
    closed_at          TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    CONSTRAINT flash_sales_pkey PRIMARY KEY (id),
    CONSTRAINT flash_sales_window CHECK (ends_at > starts_at),
    CONSTRAINT flash_sales_remaining_check CHECK (remaining >= 0 AND remaining <= quantity)
);

CREATE TABLE reservations (
    user_id       UUID        NOT NULL REFERENCES users (id),
    id            UUID        NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('active', 'committed', 'released', 'expired')),
    flash_sale_id UUID REFERENCES flash_sales (id),
    expires_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT reservations_pkey PRIMARY KEY (user_id, id)
);
CREATE INDEX reservations_expiry ON reservations (expires_at) WHERE status = 'active';

-- One row per (reservation, SKU, location): a line may be allocated across locations.
CREATE TABLE reservation_lines (
    user_id        UUID    NOT NULL,
    reservation_id UUID    NOT NULL,
    variant_id     UUID    NOT NULL REFERENCES variants (id),
    location_id    UUID    NOT NULL REFERENCES stock_locations (id),
    quantity       BIGINT  NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT,
    currency       TEXT,
    active         BOOLEAN NOT NULL DEFAULT TRUE,
    CONSTRAINT reservation_lines_pkey PRIMARY KEY (user_id, reservation_id, variant_id, location_id),
    CONSTRAINT reservation_lines_reservation_fkey FOREIGN KEY (user_id, reservation_id)
        REFERENCES reservations (user_id, id) ON DELETE CASCADE
);

-- A customer holds at most one active reservation per SKU.
CREATE TABLE reservation_holds (
    user_id        UUID NOT NULL,
    variant_id     UUID NOT NULL REFERENCES variants (id),
    reservation_id UUID NOT NULL,
    CONSTRAINT reservation_holds_pkey PRIMARY KEY (user_id, variant_id),
    CONSTRAINT reservation_holds_reservation_fkey FOREIGN KEY (user_id, reservation_id)
        REFERENCES reservations (user_id, id) ON DELETE CASCADE
);

-- Units a customer has taken from a flash sale (for the per-customer limit).
CREATE TABLE flash_sale_purchases (
    user_id       UUID   NOT NULL,
    flash_sale_id UUID   NOT NULL REFERENCES flash_sales (id),
    quantity      BIGINT NOT NULL CHECK (quantity >= 0),
    CONSTRAINT flash_sale_purchases_pkey PRIMARY KEY (user_id, flash_sale_id)
);
