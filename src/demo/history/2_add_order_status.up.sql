-- 1.4: orders get a status; existing rows are 'new'.
ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new';
