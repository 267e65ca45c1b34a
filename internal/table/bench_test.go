package table

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/ident"
)

var tsUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// ingestSchema is the shape of an ingestion table: the decoded Kafka value
// plus the record's source coordinates.
var ingestSchema = arrow.NewSchema([]arrow.Field{
	{Name: "key", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "value", Type: arrow.StructOf(
		arrow.Field{Name: "order_id", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "customer_id", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "product", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		arrow.Field{Name: "quantity", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "order_time", Type: tsUTC, Nullable: true},
	), Nullable: true},
	{Name: "stream_record_timestamp", Type: tsUTC},
	{Name: "kafka_topic", Type: arrow.BinaryTypes.String},
	{Name: "kafka_partition", Type: arrow.PrimitiveTypes.Int32},
	{Name: "kafka_offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "record_source", Type: arrow.BinaryTypes.String},
}, nil)

// ingestBatch builds n deterministic rows starting at offset off.
func ingestBatch(off, n int) arrow.RecordBatch {
	rng := rand.New(rand.NewPCG(uint64(off), 1))
	b := array.NewRecordBuilder(memory.DefaultAllocator, ingestSchema)
	defer b.Release()
	key := b.Field(0).(*array.StringBuilder)
	val := b.Field(1).(*array.StructBuilder)
	orderID := val.FieldBuilder(0).(*array.StringBuilder)
	customer := val.FieldBuilder(1).(*array.StringBuilder)
	product := val.FieldBuilder(2).(*array.StringBuilder)
	amount := val.FieldBuilder(3).(*array.Float64Builder)
	qty := val.FieldBuilder(4).(*array.Int64Builder)
	orderTime := val.FieldBuilder(5).(*array.TimestampBuilder)
	srt := b.Field(2).(*array.TimestampBuilder)
	topic := b.Field(3).(*array.StringBuilder)
	part := b.Field(4).(*array.Int32Builder)
	offset := b.Field(5).(*array.Int64Builder)
	source := b.Field(6).(*array.StringBuilder)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := off; i < off+n; i++ {
		key.Append(fmt.Sprintf("order-%09d", i))
		val.Append(true)
		orderID.Append(fmt.Sprintf("o-%09d", i))
		customer.Append(fmt.Sprintf("c-%06d", rng.IntN(100000)))
		product.Append(fmt.Sprintf("product-%02d", rng.IntN(50)))
		amount.Append(float64(rng.IntN(100000)) / 100)
		qty.Append(int64(1 + rng.IntN(10)))
		t := base + int64(i)*1000 + int64(rng.IntN(1000))
		orderTime.Append(arrow.Timestamp(t))
		srt.Append(arrow.Timestamp(t + 5000))
		topic.Append("orders")
		part.Append(int32(i % 8))
		offset.Append(int64(i / 8))
		source.Append("kafka")
	}
	return b.NewRecordBatch()
}

// BenchmarkAppend appends 1Mi rows of an ingestion table in commits of 64Ki
// rows, to a fresh table per iteration, and reports rows/s and bytes of
// Parquet per row. Variants:
//
//	default:          this package's defaults (snappy, no dictionaries)
//	write-batches:    the same, written by WriteBatches and committed by CommitFiles
//	write-batches-nostats: and no statistics on key and value's strings
//	dict-lowcard:     default plus dictionaries on kafka_topic,
//	                  record_source and value.product
//	zstd1:            default with zstd level 1
//	iceberg-defaults: iceberg-go's defaults (zstd, dictionary on every column)
func BenchmarkAppend(b *testing.B) {
	const rows, perCommit = 1 << 20, 1 << 16
	batches := make([]arrow.RecordBatch, rows/perCommit)
	for i := range batches {
		batches[i] = ingestBatch(i*perCommit, perCommit)
		defer batches[i].Release()
	}
	lowCard := []string{"kafka_topic", "record_source", "value.product"}
	noStats := []string{"key", "value.order_id", "value.customer_id", "value.product"}
	variants := []struct {
		name  string
		opts  CreateOptions
		files bool // WriteBatches + CommitFiles rather than Append
	}{
		{"default", CreateOptions{}, false},
		{"write-batches", CreateOptions{}, true},
		{"write-batches-nostats", CreateOptions{NoStatsColumns: noStats}, true},
		{"dict-lowcard", CreateOptions{DictionaryColumns: lowCard}, false},
		{"zstd1", CreateOptions{Properties: map[string]string{propCompression: "zstd", propCompressionLevel: "1"}}, false},
		{"iceberg-defaults", CreateOptions{Properties: map[string]string{propCompression: "zstd", propDictDefault: "true"}}, false},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			e := newEnv(b)
			b.ReportAllocs()
			var bytes int64
			i := 0
			for b.Loop() {
				b.StopTimer()
				tbl, err := e.store.Create(ctx, ident.Name{Catalog: "main", Schema: "bench", Object: fmt.Sprintf("t%d", i)}, ingestSchema, v.opts)
				if err != nil {
					b.Fatal(err)
				}
				i++
				b.StartTimer()
				for j, rec := range batches {
					props := map[string]string{"sluice.offsets": fmt.Sprint(j)}
					if v.files {
						p, err := tbl.WriteBatches(ctx, []arrow.RecordBatch{rec})
						if err == nil {
							err = tbl.CommitFiles(ctx, p, props)
						}
						if err != nil {
							b.Fatal(err)
						}
					} else if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, props); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				fmt.Sscan(tbl.SnapshotProperties()["total-files-size"], &bytes)
				b.StartTimer()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(bytes)/rows, "file-B/row")
		})
	}
}

// BenchmarkCompact measures the automatic maintenance's compaction of a
// busy ingestion table: 200 commits of 1,000 rows (a stream at 20,000
// records/s committing every 50 ms, between two maintenance passes)
// rewritten into one file. Each iteration compacts a fresh copy.
func BenchmarkCompact(b *testing.B) {
	const commits, perCommit = 200, 1000
	batches := make([]arrow.RecordBatch, commits)
	for i := range batches {
		batches[i] = ingestBatch(i*perCommit, perCommit)
		defer batches[i].Release()
	}
	ctx := context.Background()
	e := newEnv(b)
	opts := AutoMaintenance
	opts.OrphanOlderThan = -1 // compaction alone
	i := 0
	for b.Loop() {
		b.StopTimer()
		name := ident.Name{Catalog: "main", Schema: "bench", Object: fmt.Sprintf("c%d", i)}
		i++
		tbl, err := e.store.Create(ctx, name, ingestSchema, CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for j, rec := range batches {
			p, err := tbl.WriteBatches(ctx, []arrow.RecordBatch{rec})
			if err == nil {
				err = tbl.CommitFiles(ctx, p, map[string]string{"sluice.offsets": fmt.Sprint(j)})
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		st, err := e.store.Optimize(ctx, name, opts)
		if err != nil {
			b.Fatal(err)
		}
		if st.FilesBefore != commits || st.FilesAfter != 1 {
			b.Fatalf("compacted %d files into %d, want %d into 1", st.FilesBefore, st.FilesAfter, commits)
		}
	}
	b.ReportMetric(float64(commits*perCommit)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
