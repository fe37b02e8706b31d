-- 1.9: line items; the index is built with the table, before any row.
CREATE TABLE order_items (
    order_id bigint NOT NULL REFERENCES orders (id),
    sku text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0)
);
CREATE INDEX order_items_order_id ON order_items (order_id);
