-- The demo pipeline (`sluice up --demo` runs it as main.demo.orders_pipeline,
-- trigger continuous): the orders of the demo stream, validated, then
-- revenue per product in 5-minute windows, then the products by revenue.
-- The demo produces orders with order_time = now, so a window is emitted
-- once the watermark (the latest order_time less one minute) passes its end.

CREATE OR REFRESH STREAMING TABLE main.demo.orders_silver (
  CONSTRAINT valid_amount   EXPECT (value.amount > 0)              ON VIOLATION DROP ROW,
  CONSTRAINT valid_customer EXPECT (value.customer_id IS NOT NULL) ON VIOLATION FAIL UPDATE,
  CONSTRAINT recent         EXPECT (value.order_time > TIMESTAMP '2020-01-01')   -- warn: kept, counted
)
COMMENT 'Parsed and validated orders'
TBLPROPERTIES ('pipelines.reset.allowed' = 'false')
AS SELECT value.order_id, value.customer_id, value.product, value.amount, value.quantity, value.order_time,
          current_timestamp() AS processed_at
FROM STREAM(main.demo.orders_ingestion);

CREATE OR REFRESH STREAMING TABLE main.demo.product_revenue_5m
COMMENT 'Orders and revenue per product in 5-minute windows, each emitted once when it closes'
AS SELECT window(order_time, '5 minutes') AS w, product,
       count(order_id) AS order_count, sum(amount) AS total_revenue,
       count(DISTINCT customer_id) AS customers, max(amount) AS max_amount
FROM STREAM(main.demo.orders_silver) WATERMARK order_time DELAY OF INTERVAL 1 MINUTE
GROUP BY window(order_time, '5 minutes'), product;

CREATE OR REFRESH MATERIALIZED VIEW main.demo.top_products
COMMENT 'Products by revenue over the closed windows'
AS SELECT product, sum(order_count) AS orders, sum(total_revenue) AS revenue
FROM main.demo.product_revenue_5m GROUP BY product;
