// Package online is sluice's online feature store: the latest row of each
// entity of each feature table, read by feature serving in microseconds.
// [Store] is the contract; [Embedded] (pebble, on local disk in the data
// directory; the default) and [Redis] (rueidis, for several instances
// sharing one store) implement it, and one conformance suite tests both.
//
// # Data model
//
// A table's rows are keyed by entity [Key], the tuple of the table's
// primary-key values. A [Row] holds feature values ([Value]: null, bool,
// int64, float64, string, timestamp) by name, an event time and a version.
// A row is stored whole: the winning write replaces the stored row.
//
// # Newer wins
//
// A write replaces the stored row only if its (EventTime, Version) is not
// less than the stored row's; equal pairs: the last write wins. So replays
// and retries are harmless, in any order, and the online value equals the
// latest row the offline table holds for the entity. Writers that may
// replay rows with equal event times set Version from the source's order
// (a commit sequence number). The rule holds under concurrent writers:
// Embedded locks a stripe of keys around read-compare-write; Redis runs the
// comparison and the replacement in one Lua script.
//
// # Reading
//
// [Store.Get] returns per key the requested features' values and Feast's
// per-feature statuses: [Present], [NullValue] (the row holds null),
// [NotFound] (no row, or the row lacks the feature: unknown feature names
// are the caller's to reject), [OutsideMaxAge] (the row is older than the
// table's TTL at the read time; its values read as null). Reads are
// batched: one point lookup per key for Embedded, one pipelined round trip
// for Redis, optionally served from rueidis's client-side cache (see
// [RedisOptions.ClientCache]; then reads see writes, this process's own
// included, once Redis's invalidation arrives, typically within a round
// trip).
//
// # Ownership, concurrency, failure
//
// All methods are safe for concurrent use. Write does not retain the rows;
// the caller owns what Get returns. Write is not atomic across rows: after
// an error, retry the batch. Errors wrap [ErrInvalid] (the caller's
// mistake: do not retry), [ErrCorrupt] (stored bytes that do not decode),
// [ErrClosed], a context error, or the backend's error (I/O, network:
// retrying may help). Close waits for operations in flight.
//
// # Stored format (version 1)
//
// Entity keys are encoded canonically by [AppendKey] (equal keys, equal
// bytes; -0 is 0 and every NaN one NaN). Rows are encoded as
//
//	row     := 0x01 order uvarint(n) feature{n}
//	order   := u64be(eventNanos XOR 1<<63) u64be(version)   16 bytes; bytewise order = (EventTime, Version) order
//	feature := uvarint(len(name)) name value
//	value   := kind(1 byte) payload
//	           null 0x00: -          bool 0x01: 0x00|0x01
//	           int64 0x02: zigzag uvarint   float64 0x03: u64le(IEEE 754 bits)
//	           string 0x04: uvarint(len) bytes   timestamp 0x05: zigzag uvarint(ns since epoch)
//
// Embedded keys are 'r' uvarint(len(table)) table AppendKey(key), values
// are rows, and the key "\x00sluice.online.format" holds "1". In Redis each
// entity is a hash at Prefix uvarint(len(table)) table AppendKey(key):
// field "" holds the 16 order bytes and each feature's field its value.
// With a table TTL, Redis expires the hash at EventTime + TTL +
// [RedisOptions.ExpireGrace]. Decoders are strict and fuzzed.
package online
