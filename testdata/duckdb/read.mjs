// read.mjs: DuckDB as an independent reader of sluice's Parquet files, for
// tests (internal/testutil/sluicetest.DuckDB). It reads one JSON request on
// stdin, {"files": [PATH...], "sql": QUERY}, makes a view t over
// read_parquet(files), runs QUERY with TimeZone UTC and prints
// {"columns": [{"name", "type"}], "rows": [{column: value}]} as JSON, with
// DuckDB's JSON renderings (BIGINT and timestamps as strings).
import { DuckDBInstance } from '@duckdb/node-api';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));
if (!Array.isArray(req.files) || req.files.length === 0 || typeof req.sql !== 'string') {
  throw new Error('want {"files": [non-empty], "sql": "..."} on stdin');
}
const lit = (s) => "'" + String(s).replaceAll("'", "''") + "'";
const inst = await DuckDBInstance.create(':memory:');
const conn = await inst.connect();
await conn.run("SET TimeZone = 'UTC'");
await conn.run(`CREATE VIEW t AS SELECT * FROM read_parquet([${req.files.map(lit).join(', ')}])`);
const r = await conn.runAndReadAll(req.sql);
const names = r.columnNames();
const types = r.columnTypes();
process.stdout.write(JSON.stringify({
  columns: names.map((name, i) => ({ name, type: types[i].toString() })),
  rows: r.getRowObjectsJson(),
}) + '\n');
