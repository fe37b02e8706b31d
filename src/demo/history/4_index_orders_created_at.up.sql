-- 2.0 lists recent orders. Built without CONCURRENTLY, so writes to
-- orders wait while it builds (the lint says so).
CREATE INDEX orders_created_at ON orders (created_at);
