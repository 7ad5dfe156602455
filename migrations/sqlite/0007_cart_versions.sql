-- A cart's version: every change to a cart or its lines adds one. A change computed from a
-- cart read without a lock is written only if the cart is still at the version it read.
ALTER TABLE carts ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
