CREATE STREAMING TABLE main.web.slow AS
SELECT value.user_id, value.milis
FROM STREAM(main.web.clicks_ingestion);
