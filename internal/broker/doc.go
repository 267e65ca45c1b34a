// Package broker runs the embedded Kafka-protocol broker of `sluice up`
// and administers topics on any Kafka cluster.
//
// The broker is franz-go's kfake: one node, the real Kafka wire protocol,
// so any client works (franz-go, the Java client, librdkafka and kcat;
// plain TCP, TLS and mutual TLS; SASL is not enabled). It listens on a
// loopback address only, because it has no authentication of its own.
//
//	b, err := broker.Start(broker.Options{DataDir: dir}, logger)
//	...
//	defer b.Close()
//	cl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation())
//
// # Topics
//
// Topics are created on first use the way Kafka's default
// auto.create.topics.enable=true does it: when a client's metadata request
// allows it. librdkafka producers (kcat -P) allow it by default; franz-go
// clients need kgo.AllowAutoTopicCreation(). [CreateTopic] and [ListTopics]
// use kadm and work against any Kafka. kfake does not check topic names, so
// CreateTopic applies Kafka's rule itself.
//
// # Persistence and durability
//
// With [Options.DataDir], kfake keeps topics, record batches (segment and
// index files in Kafka's RecordBatch format), committed group offsets,
// producer IDs and ACLs on disk, and Start reloads them: after Close and
// Start on the same directory, clients read the same records at the same
// offsets and resume from the same commits. A flock on
// DataDir/sluice-broker.lock keeps a second broker off the directory.
//
// kfake appends every produced batch to its segment file with write(2)
// before it acknowledges the batch; there is no user-space buffer. So
// acknowledged records survive the process being killed (SIGKILL, OOM,
// panic): they are in the OS page cache, and on restart kfake replays the
// segments, truncating a torn tail. TestHardKill checks exactly that. What
// the page cache does not survive is a crash of the machine or a power
// loss; only [Options.SyncWrites], which fsyncs each batch and each group
// or producer log entry before acknowledging, covers that.
//
// SyncWrites is off by default, as in Kafka (log.flush.interval.messages
// is unbounded there too; Kafka relies on replication, which a single
// node lacks). Measured with BenchmarkProduce (franz-go, acks=all,
// 200-byte records, one partition, 2 cores, ext4 on a virtual disk):
//
//	                      memory       DataDir      DataDir+SyncWrites
//	pipelined producer    1.0-1.4M/s   0.79-0.80M/s 0.59-0.75M/s
//	one record per ack    7.7-8.7k/s   4.0-4.2k/s   0.26k/s (3.8 ms fsync)
//
// Pipelined producers send big batches, so an fsync per batch costs
// little; a producer that waits for every record pays one fsync per record,
// 15 times slower than without. Since the embedded broker serves local
// development and demos, where the process dying is common and the machine
// dying is not, the default favours latency; turn SyncWrites on when the
// broker holds data that exists nowhere else.
//
// # Logging
//
// kfake's Error and Warn messages go to the slog.Logger given to [Start]
// at those levels; its Info messages at Debug; its per-request Debug
// messages at Debug-4, below what any ordinary handler shows.
package broker
