-- The column comes back empty: what it held is gone.
ALTER TABLE orders ADD COLUMN legacy_note text;
