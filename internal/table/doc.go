// Package table holds sluice's offline tables: Apache Iceberg tables (format
// version 2, Parquet data files) in a local warehouse directory, catalogued
// by iceberg-go's SQL catalog in sluice's metadata database.
//
// # Exactly once
//
// A micro-batch commits its data files and the source offsets they came from
// in one snapshot: [Table.Append] takes the offsets as snapshot summary
// properties, and recovery reads them back with
// [Table.SnapshotProperties]. Commits are optimistic and never retried
// inside this package: a handle whose table moved since it last loaded or
// committed gets [ErrConflict], is refreshed, and its owner decides whether
// the batch is already committed (same offsets) or must be retried. This
// fences a stale writer out.
//
//	tbl, err := store.Load(ctx, name)
//	...
//	for batch := range batches {
//		err := tbl.Append(ctx, batch.Records, map[string]string{"sluice.offsets": batch.To})
//		if errors.Is(err, table.ErrConflict) {
//			if tbl.SnapshotProperties()["sluice.offsets"] == batch.To {
//				continue // our commit landed after all
//			}
//			// someone else wrote: re-read offsets, reprocess or stop
//		}
//	}
//
// Files written for a commit that failed are orphans; [Table.Optimize]
// (compaction, snapshot expiry, orphan removal) deletes them after a safety
// margin.
//
// # Metadata database
//
// [Options.DB] is opened and owned by the caller. For SQLite use the pure-Go
// driver "sqlite" (modernc.org/sqlite), as [OpenSQLite] does, with
//
//	file:PATH?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate
//
// busy_timeout makes concurrent writers wait for the lock instead of failing
// with "database is locked"; WAL lets readers run beside the writer;
// _txlock=immediate takes the write lock when a read-write transaction
// begins, so that a transaction that reads then writes (as the catalog's
// create does) waits under busy_timeout instead of failing with
// SQLITE_BUSY on lock upgrade. Read-only transactions still begin deferred.
// The pragmas are in the DSN so that they apply to every pooled connection.
//
// # Parquet writing
//
// iceberg-go dictionary-encodes every column and compresses with zstd by
// default. [Store.Create] instead sets snappy and turns dictionaries off
// except on the columns the caller marks ([CreateOptions.DictionaryColumns]);
// see [DefaultProperties]. On an ingestion-shaped table (BenchmarkAppend, 2
// cores, 64Ki rows per commit) that writes about 0.9M rows/s against 0.45M
// with iceberg-go's defaults. arrow-go's dictionary encoder allocates once
// per string value, so even a low-cardinality dictionary column costs
// throughput (three such columns: about 0.75M rows/s) for a small saving
// with snappy; zstd level 1 ("write.parquet.compression-codec": "zstd",
// "write.parquet.compression-level": "1") makes files about 3× smaller at
// about 0.74M rows/s.
package table
