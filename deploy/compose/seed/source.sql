-- Sample source data for the compose quickstart: a small shop whose orders
-- table is large enough to be planned into many partitions, so the copy is
-- spread across the worker replicas. Runs once, when the source volume is new.
CREATE SCHEMA shop;

CREATE TABLE shop.customers (
  id         bigint PRIMARY KEY,
  name       text NOT NULL,
  email      text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shop.orders (
  id          bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES shop.customers (id),
  amount      numeric(12, 2) NOT NULL,
  status      text NOT NULL,
  items       jsonb NOT NULL DEFAULT '[]',
  placed_at   timestamptz NOT NULL
);

INSERT INTO shop.customers (id, name, email)
SELECT g, 'customer ' || g, 'customer' || g || '@example.com'
FROM generate_series(1, 20000) AS g;

INSERT INTO shop.orders (customer_id, amount, status, items, placed_at)
SELECT 1 + (g * 7919) % 20000,
       round((random() * 500)::numeric, 2),
       (ARRAY['new', 'paid', 'shipped', 'delivered'])[1 + g % 4],
       jsonb_build_array(jsonb_build_object('sku', 'SKU-' || (g % 997), 'qty', 1 + g % 5)),
       now() - make_interval(mins => g)
FROM generate_series(1, 1000000) AS g;

ANALYZE shop.customers, shop.orders;
