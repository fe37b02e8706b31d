-- The demo checkout's orders (1.0).
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer text NOT NULL,
    total_cents bigint NOT NULL,
    legacy_note text,
    created_at timestamptz NOT NULL DEFAULT now()
);
