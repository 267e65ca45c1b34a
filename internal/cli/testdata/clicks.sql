-- The README's walk-through pipeline: clean clicks, then clicks per user.
CREATE OR REFRESH STREAMING TABLE main.web.clicks_clean (
  CONSTRAINT has_url EXPECT (url IS NOT NULL) ON VIOLATION DROP ROW
)
AS SELECT value.user_id AS user_id, value.url AS url, value.ms AS ms, value.at AS at
FROM STREAM(main.web.clicks_ingestion);

CREATE OR REFRESH MATERIALIZED VIEW main.web.clicks_per_user AS
SELECT user_id, count(*) AS clicks, avg(ms) AS avg_ms
FROM main.web.clicks_clean
GROUP BY user_id;
