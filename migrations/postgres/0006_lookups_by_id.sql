-- Lookups by id alone: a provider's webhook names only Emporium's payment id, and admins
-- find a return by its id. Without these indexes both scanned their whole table (the primary
-- keys lead with user_id).
CREATE INDEX payments_by_id ON payments (id);
CREATE INDEX returns_by_id ON returns (id);
