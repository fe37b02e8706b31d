-- 2.0 no longer reads or writes the free-text note (1.9 stopped using
-- it): the column goes, and its data with it.
ALTER TABLE orders DROP COLUMN legacy_note;
