package ingest

import (
	"reflect"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
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

// TestBatchTake checks the rows of batches taken one after the other (the
// second one into reserved builders) against the same rows appended to a
// plain Arrow record builder, with refused records and several topics and
// partitions mixed in.
func TestBatchTake(t *testing.T) {
	key, value := mustCompile(t, `{"type":"string"}`), mustCompile(t, demo.OrderSchema)
	bt := newBatch(memory.DefaultAllocator, key, value, kafka.Offsets{}, kafka.Offsets{})
	defer bt.release()
	recs := demoRecords(300)
	for i := range recs {
		switch i % 7 {
		case 3:
			recs[i].Topic = "other-topic"
		case 5:
			recs[i].Value = []byte(`{"order_id":1}`) // refused
		case 6:
			recs[i].Key = nil
			recs[i].Value = []byte(`{"order_id":"o\u00e9\n","amount":1,"customer_id":"c","order_time":"2024-05-01T00:00:00Z","product":null}`)
		}
	}
	now := time.Now()
	wantNext := kafka.Offsets{}
	for _, part := range [][]Record{recs[:120], recs[120:240], recs[240:], recs[:0], recs[7:9], recs[14:16]} {
		want := array.NewRecordBuilder(memory.DefaultAllocator, IngestionSchema(key, value))
		kd, vd := key.NewDecoder(), value.NewDecoder()
		nBad := 0
		for i := range part {
			r := &part[i]
			if err := vd.Check(r.Value); err != nil {
				nBad++
			} else {
				if err := vd.Append(want.Field(1), r.Value); err != nil {
					t.Fatal(err)
				}
				if err := kd.Append(want.Field(0), r.Key); err != nil {
					t.Fatal(err)
				}
				want.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Timestamp.UnixMicro()))
				want.Field(3).(*array.StringBuilder).Append(r.Topic)
				want.Field(4).(*array.Int32Builder).Append(r.Partition)
				want.Field(5).(*array.Int64Builder).Append(r.Offset)
				want.Field(6).(*array.StringBuilder).Append(RecordSourceStream)
			}
			if refused := bt.add(r, now); refused != (vd.Check(r.Value) != nil) {
				t.Fatalf("record %d: refused = %v", i, refused)
			}
			wantNext.Set(r.Topic, r.Partition, r.Offset+1)
		}
		if !reflect.DeepEqual(bt.next, wantNext) {
			t.Fatalf("next offsets %s, want %s", bt.next, wantNext)
		}
		w := want.NewRecordBatch()
		want.Release()
		good, bad := bt.take()
		switch {
		case w.NumRows() == 0 && good != nil:
			t.Fatalf("%d good rows, want none", good.NumRows())
		case w.NumRows() > 0 && (good == nil || !array.RecordEqual(good, w)):
			t.Fatalf("good rows:\n%v\nwant:\n%v", good, w)
		case (bad == nil) != (nBad == 0) || bad != nil && bad.NumRows() != int64(nBad):
			t.Fatalf("bad rows %v, want %d", bad, nBad)
		}
		if good != nil {
			for i, c := range good.Columns() {
				if err := array.ValidateFull(c); err != nil {
					t.Fatalf("column %d: %v", i, err)
				}
			}
			good.Release()
		}
		if bad != nil {
			bad.Release()
		}
		w.Release()
	}
}
