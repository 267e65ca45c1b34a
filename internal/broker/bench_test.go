package broker_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
)

// BenchmarkProduce measures 200-byte records through franz-go (acks=all,
// idempotent: the defaults) into the embedded broker, one partition.
// "pipelined" keeps the producer's buffers full, so batches are large;
// "one-by-one" waits for each record's ack, so every record is its own
// batch (and, with SyncWrites, its own fsync).
func BenchmarkProduce(b *testing.B) {
	stores := []struct {
		name string
		opts func(b *testing.B) broker.Options
	}{
		{"memory", func(*testing.B) broker.Options { return broker.Options{} }},
		{"datadir", func(b *testing.B) broker.Options { return broker.Options{DataDir: b.TempDir()} }},
		{"datadir-sync", func(b *testing.B) broker.Options { return broker.Options{DataDir: b.TempDir(), SyncWrites: true} }},
	}
	value := bytes.Repeat([]byte("x"), 200)
	for _, st := range stores {
		for _, mode := range []string{"pipelined", "one-by-one"} {
			b.Run(st.name+"/"+mode, func(b *testing.B) {
				ctx := context.Background()
				br := startBroker(b, st.opts(b))
				cl := newClient(b, br.Addr(), nil, kgo.DefaultProduceTopic("bench"))
				if err := broker.CreateTopic(ctx, cl, "bench", 1); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(value)))
				b.ResetTimer()
				if mode == "one-by-one" {
					for range b.N {
						if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					var failed atomic.Pointer[error]
					for range b.N {
						cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
							if err != nil {
								failed.CompareAndSwap(nil, &err)
							}
						})
					}
					if err := cl.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					if err := failed.Load(); err != nil {
						b.Fatal(*err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}
