package ingest

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/demo"
	"github.com/sluice-dev/sluice/internal/source/kafka"
)

// demoRecords returns n demo orders (key and JSON value, ~194 bytes) spread
// over three partitions of the demo topic, as the runner hands them to add.
func demoRecords(n int) []Record {
	g := demo.NewGenerator(1)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	recs := make([]Record, n)
	for i := range recs {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		k, v := g.Next(ts, nil, nil)
		recs[i] = Record{Key: k, Value: v, Timestamp: ts, Topic: demo.Topic, Partition: int32(i % 3), Offset: int64(i / 3)}
	}
	return recs
}

// BenchmarkBatchAdd measures the whole per-record decode path of ingestion:
// batch.add of demo orders (key and value decoded and validated, all seven
// columns appended), sealing a batch every commitMax rows as the runner
// does with the default commit_max_records. Parquet writing is not included.
func BenchmarkBatchAdd(b *testing.B) {
	const commitMax = 200_000
	key, value := mustCompile(b, `{"type":"string"}`), mustCompile(b, demo.OrderSchema)
	recs := demoRecords(8192)
	bt := newBatch(memory.DefaultAllocator, key, value, kafka.Offsets{}, kafka.Offsets{})
	defer bt.release()
	now := time.Now()
	var bytes int64
	for _, r := range recs {
		bytes += int64(len(r.Key) + len(r.Value))
	}
	b.SetBytes(bytes / int64(len(recs)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := &recs[i%len(recs)]
		if bt.add(r, now) {
			b.Fatal("refused a demo order")
		}
		if bt.len() >= commitMax {
			s := bt.seal(nil)
			s.release()
		}
	}
}
