package pqwrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// gen makes random schemas and batches of the kinds pqwrite supports.
type gen struct {
	rng      *rand.Rand
	nullRate float64 // chance of a null in a nullable array
	fields   int
}

var tsMicro = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

func (g *gen) leafType() arrow.DataType {
	return []arrow.DataType{
		arrow.FixedWidthTypes.Boolean, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int64,
		arrow.PrimitiveTypes.Float32, arrow.PrimitiveTypes.Float64, arrow.BinaryTypes.String,
		arrow.BinaryTypes.Binary, arrow.FixedWidthTypes.Date32, tsMicro,
		&arrow.TimestampType{Unit: arrow.Millisecond},
	}[g.rng.IntN(10)]
}

func (g *gen) field(depth int) arrow.Field {
	g.fields++
	f := arrow.Field{Name: fmt.Sprintf("f%d", g.fields), Nullable: g.rng.IntN(3) > 0}
	if depth < 3 && g.rng.IntN(4) == 0 {
		n := 1 + g.rng.IntN(3)
		kids := make([]arrow.Field, n)
		for i := range kids {
			kids[i] = g.field(depth + 1)
		}
		f.Type = arrow.StructOf(kids...)
		return f
	}
	f.Type = g.leafType()
	return f
}

func (g *gen) schema() *arrow.Schema {
	n := 1 + g.rng.IntN(6)
	fs := make([]arrow.Field, n)
	for i := range fs {
		fs[i] = g.field(0)
	}
	return arrow.NewSchema(fs, nil)
}

// strs are the strings values are drawn from: empty, short, and longer
// than a small statistics limit, with shared prefixes.
var strs = []string{"", "a", "ab", "abc", "b", "zzzz", "\xff\x00", "order-000000001", "order-000000002", "a somewhat longer string value than the others, past sixty-four bytes of length"}

func (g *gen) fill(b array.Builder, f arrow.Field) {
	if f.Nullable && g.rng.Float64() < g.nullRate {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.StructBuilder:
		b.Append(true)
		for i, c := range f.Type.(*arrow.StructType).Fields() {
			g.fill(b.FieldBuilder(i), c)
		}
	case *array.BooleanBuilder:
		b.Append(g.rng.IntN(2) == 0)
	case *array.Int32Builder:
		b.Append(int32(g.rng.Uint32()) >> g.rng.IntN(32))
	case *array.Date32Builder:
		b.Append(arrow.Date32(g.rng.IntN(40000) - 20000))
	case *array.Int64Builder:
		b.Append(int64(g.rng.Uint64()) >> g.rng.IntN(64))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(g.rng.Int64N(4e15)))
	case *array.Float32Builder:
		b.Append([]float32{0, float32(math.Copysign(0, -1)), 1.5, -2.25, float32(math.NaN()), float32(math.Inf(1)), g.rng.Float32()}[g.rng.IntN(7)])
	case *array.Float64Builder:
		b.Append([]float64{0, math.Copysign(0, -1), 1.5, -2.25, math.NaN(), math.Inf(-1), g.rng.NormFloat64()}[g.rng.IntN(7)])
	case *array.StringBuilder:
		b.Append(strs[g.rng.IntN(len(strs))])
	case *array.BinaryBuilder:
		b.Append([]byte(strs[g.rng.IntN(len(strs))]))
	default:
		panic(fmt.Sprintf("no generator for %T", b))
	}
}

func (g *gen) batch(sc *arrow.Schema, rows int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for range rows {
		for i, f := range sc.Fields() {
			g.fill(b.Field(i), f)
		}
	}
	return b.NewRecordBatch()
}

// props are random writer properties pqwrite supports.
func (g *gen) props(sc *arrow.Schema) *parquet.WriterProperties {
	codecs := []compress.Compression{compress.Codecs.Snappy, compress.Codecs.Uncompressed, compress.Codecs.Zstd, compress.Codecs.Gzip}
	opts := []parquet.WriterProperty{
		parquet.WithDictionaryDefault(false),
		parquet.WithCompression(codecs[g.rng.IntN(len(codecs))]),
		parquet.WithDataPageSize(int64([]int{64, 1000, 1 << 20}[g.rng.IntN(3)])),
		parquet.WithMaxRowGroupLength(int64([]int{7, 100, 1 << 20}[g.rng.IntN(3)])),
		parquet.WithMaxStatsSize(int64([]int{16, 4096}[g.rng.IntN(2)])),
	}
	if g.rng.IntN(2) == 0 {
		opts = append(opts, parquet.WithDataPageVersion(parquet.DataPageV1))
	}
	if g.rng.IntN(3) == 0 {
		opts = append(opts, parquet.WithStats(false))
	}
	return parquet.NewWriterProperties(opts...)
}

// writeBoth writes recs with pqwrite, and with pqarrow as one batch
// (pqwrite fills row groups across batches; pqarrow's Write starts one per
// batch).
func writeBoth(t testing.TB, sc *arrow.Schema, props *parquet.WriterProperties, recs []arrow.RecordBatch) (want, got []byte, gotMeta *metadata.FileMetaData) {
	t.Helper()
	var a bytes.Buffer
	fw, err := pqarrow.NewFileWriter(sc, &a, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	whole := concat(t, sc, recs)
	defer whole.Release()
	if whole.NumRows() > 0 {
		if err := fw.Write(whole); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	w, err := New(sc, Options{Props: props, StoreSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	md, err := w.Write(&b, recs)
	if err != nil {
		t.Fatal(err)
	}
	return a.Bytes(), b.Bytes(), md
}

// concat is recs as one batch.
func concat(t testing.TB, sc *arrow.Schema, recs []arrow.RecordBatch) arrow.RecordBatch {
	cols := make([]arrow.Array, len(sc.Fields()))
	var rows int64
	for _, r := range recs {
		rows += r.NumRows()
	}
	for i := range cols {
		var in []arrow.Array
		for _, r := range recs {
			in = append(in, r.Column(i))
		}
		c, err := array.Concatenate(in, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		cols[i] = c
	}
	return array.NewRecordBatch(sc, cols, rows)
}

func readAll(t testing.TB, data []byte) arrow.Table {
	t.Helper()
	tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(data), nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatalf("reading pqwrite's file: %v", err)
	}
	return tbl
}

// compareFiles checks that got reads back as want does and has the same
// metadata: schema, key-value metadata, row groups, and each column
// chunk's values, encodings, codec and statistics.
func compareFiles(t testing.TB, sc *arrow.Schema, recs []arrow.RecordBatch, want, got []byte, byRows bool) {
	t.Helper()
	gt := readAll(t, got)
	defer gt.Release()
	wt := readAll(t, want)
	defer wt.Release()
	if !gt.Schema().Equal(wt.Schema()) {
		t.Fatalf("schema read back:\n%s\nwant\n%s", gt.Schema(), wt.Schema())
	}
	for i := range sc.Fields() {
		var in []arrow.Array
		for _, r := range recs {
			in = append(in, r.Column(i))
		}
		wantCol, err := array.Concatenate(in, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		gotCol, err := array.Concatenate(gt.Column(i).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		if !array.ApproxEqual(wantCol, gotCol, array.WithNaNsEqual(true)) {
			t.Fatalf("column %s read back differs:\n got %v\nwant %v", sc.Field(i).Name, gotCol, wantCol)
		}
		wantCol.Release()
		gotCol.Release()
	}
	wr, err := file.NewParquetReader(bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	gr, err := file.NewParquetReader(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	wm, gm := wr.MetaData(), gr.MetaData()
	if !wm.Schema.Equals(gm.Schema) {
		t.Fatalf("Parquet schema %s, want %s", gm.Schema, wm.Schema)
	}
	if !slices.Equal(wm.KeyValueMetadata().Keys(), gm.KeyValueMetadata().Keys()) || !slices.Equal(wm.KeyValueMetadata().Values(), gm.KeyValueMetadata().Values()) {
		t.Fatalf("key-value metadata %v, want %v", gm.KeyValueMetadata(), wm.KeyValueMetadata())
	}
	if wm.NumRows != gm.NumRows {
		t.Fatalf("%d rows, want %d", gm.NumRows, wm.NumRows)
	}
	if !byRows {
		return
	}
	if wm.NumRowGroups() != gm.NumRowGroups() {
		t.Fatalf("%d row groups, want %d", gm.NumRowGroups(), wm.NumRowGroups())
	}
	for g := range wm.NumRowGroups() {
		wg, gg := wm.RowGroup(g), gm.RowGroup(g)
		if wg.NumRows() != gg.NumRows() {
			t.Fatalf("row group %d: %d rows, want %d", g, gg.NumRows(), wg.NumRows())
		}
		for c := range wg.NumColumns() {
			wc, err := wg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			gc, err := gg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			name := wc.PathInSchema().String()
			if wc.NumValues() != gc.NumValues() || wc.Compression() != gc.Compression() || !slices.Equal(wc.Encodings(), gc.Encodings()) {
				t.Fatalf("row group %d column %s: values %d, %s, %v; want %d, %s, %v", g, name,
					gc.NumValues(), gc.Compression(), gc.Encodings(), wc.NumValues(), wc.Compression(), wc.Encodings())
			}
			ws, gs := encStats(t, wc), encStats(t, gc)
			if ws != nil && gs != nil {
				// arrow-go leaves an empty string bound out when the
				// chunk has no nulls; pqwrite writes it.
				w, g := ws.(metadata.EncodedStatistics), gs.(metadata.EncodedStatistics)
				if !w.HasMin && g.HasMin && len(g.Min) == 0 {
					g.HasMin = false
				}
				if !w.HasMax && g.HasMax && len(g.Max) == 0 {
					g.HasMax = false
				}
				gs = g
			}
			if fmt.Sprint(ws) != fmt.Sprint(gs) {
				t.Fatalf("row group %d column %s: statistics %+v, want %+v", g, name, gs, ws)
			}
		}
	}
}

func encStats(t testing.TB, c *metadata.ColumnChunkMetaData) any {
	set, err := c.StatsSet()
	if err != nil {
		t.Fatal(err)
	}
	if !set {
		return nil
	}
	s, err := c.Statistics()
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	e.AllNullValue = false
	return e
}

// TestDifferential writes random batches of random schemas with pqarrow
// and pqwrite, and compares what they read back as and their metadata.
func TestDifferential(t *testing.T) {
	seeds := uint64(300)
	if raceEnabled {
		seeds = 60
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { differential(t, seed) })
	}
}

func differential(t testing.TB, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	g := &gen{rng: rng, nullRate: []float64{0, 0.05, 0.5, 1}[rng.IntN(4)]}
	sc := g.schema()
	props := g.props(sc)
	var recs []arrow.RecordBatch
	for range 1 + rng.IntN(3) {
		r := g.batch(sc, []int{0, 1, 9, 300, 2000}[rng.IntN(5)])
		if r.NumRows() > 2 && rng.IntN(3) == 0 {
			// A slice: arrays with an offset.
			s := r.NewSlice(1, r.NumRows()-1)
			r.Release()
			r = s
		}
		recs = append(recs, r)
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	want, got, _ := writeBoth(t, sc, props, recs)
	compareFiles(t, sc, recs, want, got, true)
}

func TestUnsupported(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sc    *arrow.Schema
		props *parquet.WriterProperties
	}{
		{"list", arrow.NewSchema([]arrow.Field{{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)}}, nil), nil},
		{"int8", arrow.NewSchema([]arrow.Field{{Name: "i", Type: arrow.PrimitiveTypes.Int8}}, nil), nil},
		{"seconds", arrow.NewSchema([]arrow.Field{{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Second}}}, nil), parquet.NewWriterProperties(parquet.WithDictionaryDefault(false))},
		{"dictionary", arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String}}, nil), parquet.NewWriterProperties()},
		{"delta", arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String}}, nil),
			parquet.NewWriterProperties(parquet.WithDictionaryDefault(false), parquet.WithEncoding(parquet.Encodings.DeltaLengthByteArray))},
	} {
		if _, err := New(tc.sc, Options{Props: tc.props}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: New = %v, want ErrUnsupported", tc.name, err)
		}
	}
}

// TestRequiredWithNulls: a batch with nulls in a column its schema says
// is not nullable is refused, not written wrong.
func TestRequiredWithNulls(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{1, 0}, []bool{true, false})
	col := b.NewArray()
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, 2)
	w, err := New(sc, Options{Props: parquet.NewWriterProperties(parquet.WithDictionaryDefault(false))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(&bytes.Buffer{}, []arrow.RecordBatch{rec}); err == nil {
		t.Fatal("writing nulls into a required column succeeded")
	}
}

// TestLevels checks the hybrid encoding of definition levels by reading
// back, with arrow-go, columns of every null pattern shape: runs and
// literals of all lengths around the group size of eight.
func TestLevels(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "s", Nullable: true, Type: arrow.StructOf(
		arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int32, Nullable: true})}}, nil)
	props := parquet.NewWriterProperties(parquet.WithDictionaryDefault(false))
	rng := rand.New(rand.NewPCG(1, 2))
	trials := 200
	if raceEnabled {
		trials = 20
	}
	for range trials {
		sb := array.NewStructBuilder(memory.DefaultAllocator, sc.Field(0).Type.(*arrow.StructType))
		xb := sb.FieldBuilder(0).(*array.Int32Builder)
		rows := rng.IntN(3000)
		for i := 0; i < rows; {
			run := []int{1, 2, 7, 8, 9, 15, 16, 17, 600}[rng.IntN(9)]
			level := rng.IntN(3)
			for k := 0; k < run && i < rows; k, i = k+1, i+1 {
				switch level {
				case 0:
					sb.AppendNull()
				case 1:
					sb.Append(true)
					xb.AppendNull()
				default:
					sb.Append(true)
					xb.Append(int32(i))
				}
			}
		}
		col := sb.NewArray()
		rec := array.NewRecordBatch(sc, []arrow.Array{col}, int64(col.Len()))
		want, got, _ := writeBoth(t, sc, props, []arrow.RecordBatch{rec})
		compareFiles(t, sc, []arrow.RecordBatch{rec}, want, got, true)
		rec.Release()
		col.Release()
		sb.Release()
	}
}

// FuzzWrite runs the differential test on fuzzed seeds.
func FuzzWrite(f *testing.F) {
	for s := range uint64(8) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { differential(t, seed) })
}

// BenchmarkWrite writes 64Ki rows of an ingestion table's shape (strings
// and timestamps in a nullable struct, the Kafka coordinates) with pqwrite
// and, for comparison, with pqarrow, as tables write fresh files: snappy,
// no dictionaries, pages V2.
func BenchmarkWrite(b *testing.B) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "value", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "order_id", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "customer_id", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "product", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
			arrow.Field{Name: "quantity", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "order_time", Type: tsMicro, Nullable: true})},
		{Name: "stream_record_timestamp", Type: tsMicro},
		{Name: "kafka_topic", Type: arrow.BinaryTypes.String},
		{Name: "kafka_partition", Type: arrow.PrimitiveTypes.Int32},
		{Name: "kafka_offset", Type: arrow.PrimitiveTypes.Int64},
		{Name: "record_source", Type: arrow.BinaryTypes.String},
	}, nil)
	const rows = 64 << 10
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer rb.Release()
	rng := rand.New(rand.NewPCG(1, 2))
	products := []string{"laptop", "phone", "tablet", "monitor", "keyboard", "mouse"}
	for i := range rows {
		c := rng.IntN(10000)
		rb.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("c%05d", c))
		v := rb.Field(1).(*array.StructBuilder)
		v.Append(true)
		v.FieldBuilder(0).(*array.StringBuilder).Append(fmt.Sprintf("o-%012d", i))
		v.FieldBuilder(1).(*array.StringBuilder).Append(fmt.Sprintf("c%05d", c))
		v.FieldBuilder(2).(*array.StringBuilder).Append(products[rng.IntN(len(products))])
		v.FieldBuilder(3).(*array.Float64Builder).Append(float64(rng.IntN(50000)) / 100)
		v.FieldBuilder(4).(*array.Int64Builder).Append(int64(1 + rng.IntN(5)))
		v.FieldBuilder(5).(*array.TimestampBuilder).Append(arrow.Timestamp(1.7e15 + int64(i)*1000))
		rb.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(1.7e15 + int64(i)*1000 + 5))
		rb.Field(3).(*array.StringBuilder).Append("orders")
		rb.Field(4).(*array.Int32Builder).Append(int32(i % 3))
		rb.Field(5).(*array.Int64Builder).Append(int64(i / 3))
		rb.Field(6).(*array.StringBuilder).Append("stream")
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	props := parquet.NewWriterProperties(parquet.WithDictionaryDefault(false), parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDataPageVersion(parquet.DataPageV2))
	recs := []arrow.RecordBatch{rec}
	b.Run("pqwrite", func(b *testing.B) {
		w, err := New(sc, Options{Props: props, StoreSchema: true})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := w.Write(io.Discard, recs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("pqarrow", func(b *testing.B) {
		for b.Loop() {
			fw, err := pqarrow.NewFileWriter(sc, io.Discard, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
			if err != nil {
				b.Fatal(err)
			}
			if err := fw.Write(rec); err != nil {
				b.Fatal(err)
			}
			if err := fw.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// TestWriteAfterFailedWrite: a write that fails part way through a page
// (a null in a required column) leaves nothing behind for the next
// write, which reuses its scratch: booleans start a fresh byte and page
// headers count only the new rows.
func TestWriteAfterFailedWrite(t *testing.T) {
	props := parquet.NewWriterProperties(parquet.WithDictionaryDefault(false))
	for _, dt := range []arrow.DataType{arrow.FixedWidthTypes.Boolean, arrow.PrimitiveTypes.Int64} {
		sc := arrow.NewSchema([]arrow.Field{{Name: "x", Type: dt}}, nil)
		w, err := New(sc, Options{Props: props})
		if err != nil {
			t.Fatal(err)
		}
		bad := batchOf(sc, 3, true)
		if _, err := w.Write(io.Discard, []arrow.RecordBatch{bad}); err == nil {
			t.Fatalf("%s: writing a null into a required column succeeded", dt)
		}
		good := batchOf(sc, 2, false)
		var buf bytes.Buffer
		if _, err := w.Write(&buf, []arrow.RecordBatch{good}); err != nil {
			t.Fatalf("%s: the write after a failed one: %v", dt, err)
		}
		r, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		cc, err := r.MetaData().RowGroup(0).ColumnChunk(0)
		if err != nil {
			t.Fatal(err)
		}
		if cc.NumValues() != 2 {
			t.Fatalf("%s: the write after a failed one has %d values, want 2", dt, cc.NumValues())
		}
		tbl := readAll(t, buf.Bytes())
		if tbl.NumRows() != 2 {
			t.Fatalf("%s: read back %d rows, want 2", dt, tbl.NumRows())
		}
		tbl.Release()
	}
}

// batchOf is a batch of sc's one boolean or int64 column: n values, then
// a null if null.
func batchOf(sc *arrow.Schema, n int, null bool) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := range n {
		switch fb := b.Field(0).(type) {
		case *array.BooleanBuilder:
			fb.Append(i%2 == 0)
		case *array.Int64Builder:
			fb.Append(int64(i))
		}
	}
	if null {
		b.Field(0).AppendNull()
	}
	return b.NewRecordBatch()
}

// TestZeroPageSize: a page size of 0 writes a value a page, and a column
// with nulls does not spin.
func TestZeroPageSize(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	props := parquet.NewWriterProperties(parquet.WithDictionaryDefault(false), parquet.WithDataPageSize(0))
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{1, 0, 3}, []bool{true, false, true})
	col := b.NewArray()
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, 3)
	want, got, _ := writeBoth(t, sc, props, []arrow.RecordBatch{rec})
	compareFiles(t, sc, []arrow.RecordBatch{rec}, want, got, true)
}

// TestWrongColumnType: a batch whose column is not of the schema's type
// is refused, not read as if it were.
func TestWrongColumnType(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	w, err := New(sc, Options{Props: parquet.NewWriterProperties(parquet.WithDictionaryDefault(false))})
	if err != nil {
		t.Fatal(err)
	}
	other := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int32}}, nil)
	b := array.NewInt32Builder(memory.DefaultAllocator)
	b.AppendValues([]int32{1, 2}, nil)
	col := b.NewArray()
	rec := array.NewRecordBatch(other, []arrow.Array{col}, 2)
	if _, err := w.Write(io.Discard, []arrow.RecordBatch{rec}); err == nil || !strings.Contains(err.Error(), "column x is int32") {
		t.Fatalf("writing int32 as int64: %v", err)
	}
}
