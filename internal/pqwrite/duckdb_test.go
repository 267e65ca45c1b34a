package pqwrite_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/sluice-dev/sluice/internal/pqwrite"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// TestDuckDBReads has DuckDB, an independent Parquet reader, read files
// pqwrite wrote (pages V1 and V2, several pages per column, nulls at every
// level of a nested struct) and checks every value, as the text Go
// expects DuckDB to render it, and the column statistics DuckDB reads.
func TestDuckDBReads(t *testing.T) {
	sluicetest.RequireDuckDB(t)
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	inner := arrow.StructOf(arrow.Field{Name: "z", Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "str", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "ts", Type: ts, Nullable: true},
		{Name: "s", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "y", Type: arrow.BinaryTypes.String},
			arrow.Field{Name: "inner", Type: inner, Nullable: true})},
	}, nil)
	const rows = 5000
	rng := rand.New(rand.NewPCG(3, 4))
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer rb.Release()
	var want []string // per row, the columns as DuckDB renders them
	null := func() bool { return rng.IntN(5) == 0 }
	for i := range rows {
		var row []string
		add := func(present bool, b array.Builder, appendValue func(), text string) {
			if !present {
				b.AppendNull()
				row = append(row, "NULL")
				return
			}
			appendValue()
			row = append(row, text)
		}
		rb.Field(0).(*array.Int64Builder).Append(int64(i))
		row = append(row, fmt.Sprint(i))
		bv := rng.IntN(2) == 0
		add(!null(), rb.Field(1), func() { rb.Field(1).(*array.BooleanBuilder).Append(bv) }, fmt.Sprint(bv))
		iv := int32(rng.Uint32())
		add(!null(), rb.Field(2), func() { rb.Field(2).(*array.Int32Builder).Append(iv) }, fmt.Sprint(iv))
		fv := float64(rng.IntN(4000)-2000) / 4
		add(!null(), rb.Field(3), func() { rb.Field(3).(*array.Float64Builder).Append(fv) }, duckDouble(fv))
		sv := strings.Repeat("é", rng.IntN(3)) + fmt.Sprintf("s%d", rng.IntN(1000))
		add(!null(), rb.Field(4), func() { rb.Field(4).(*array.StringBuilder).Append(sv) }, sv)
		bin := []byte{byte(i), 0xff, 0}
		add(!null(), rb.Field(5), func() { rb.Field(5).(*array.BinaryBuilder).Append(bin) }, fmt.Sprintf("%X", bin))
		dv := arrow.Date32(rng.IntN(30000))
		add(!null(), rb.Field(6), func() { rb.Field(6).(*array.Date32Builder).Append(dv) }, dv.ToTime().Format("2006-01-02"))
		tv := arrow.Timestamp(rng.Int64N(2e15))
		add(!null(), rb.Field(7), func() { rb.Field(7).(*array.TimestampBuilder).Append(tv) }, fmt.Sprint(int64(tv)))
		sb := rb.Field(8).(*array.StructBuilder)
		if null() {
			sb.AppendNull()
			row = append(row, "NULL", "NULL", "NULL", "NULL")
		} else {
			sb.Append(true)
			row = append(row, "present")
			xv := rng.Int64()
			add(!null(), sb.FieldBuilder(0), func() { sb.FieldBuilder(0).(*array.Int64Builder).Append(xv) }, fmt.Sprint(xv))
			yv := fmt.Sprintf("y%d", i)
			sb.FieldBuilder(1).(*array.StringBuilder).Append(yv)
			row = append(row, yv)
			ib := sb.FieldBuilder(2).(*array.StructBuilder)
			if null() {
				ib.AppendNull()
				row = append(row, "NULL")
			} else {
				ib.Append(true)
				zv := float64(i) / 8
				add(!null(), ib.FieldBuilder(0), func() { ib.FieldBuilder(0).(*array.Float64Builder).Append(zv) }, duckDouble(zv))
			}
		}
		want = append(want, strings.Join(row, "|"))
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	dir := t.TempDir()
	for _, v := range []parquet.DataPageVersion{parquet.DataPageV1, parquet.DataPageV2} {
		vname := map[parquet.DataPageVersion]string{parquet.DataPageV1: "V1", parquet.DataPageV2: "V2"}[v]
		props := parquet.NewWriterProperties(parquet.WithDictionaryDefault(false), parquet.WithCompression(compress.Codecs.Snappy),
			parquet.WithDataPageVersion(v), parquet.WithDataPageSize(4096), parquet.WithMaxRowGroupLength(2000))
		w, err := pqwrite.New(sc, pqwrite.Options{Props: props, StoreSchema: true})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, vname+".parquet")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(f, []arrow.RecordBatch{rec}); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		res := sluicetest.DuckDB(t, []string{path}, `SELECT concat_ws('|', id::VARCHAR, coalesce(b::VARCHAR, 'NULL'),
			coalesce(i32::VARCHAR, 'NULL'), coalesce(f64::VARCHAR, 'NULL'), coalesce(str, 'NULL'), coalesce(hex(bin), 'NULL'),
			coalesce(d::VARCHAR, 'NULL'), coalesce(epoch_us(ts)::VARCHAR, 'NULL'),
			CASE WHEN s IS NULL THEN 'NULL' ELSE 'present' END, coalesce(s.x::VARCHAR, 'NULL'), coalesce(s.y, 'NULL'),
			coalesce(s.inner.z::VARCHAR, 'NULL')) AS r FROM t ORDER BY id`)
		if len(res.Rows) != rows {
			t.Fatalf("pages %s: DuckDB read %d rows, want %d", vname, len(res.Rows), rows)
		}
		for i, r := range res.Rows {
			if r["r"] != want[i] {
				t.Fatalf("pages %s, row %d: DuckDB read\n%v\nwant\n%v", vname, i, r["r"], want[i])
			}
		}
		// The statistics DuckDB reads agree with the data.
		stats := sluicetest.DuckDB(t, []string{path}, `SELECT
			(SELECT min(stats_min_value) FROM parquet_metadata('`+path+`') WHERE path_in_schema = 'id') AS min_id,
			(SELECT max(stats_max_value::BIGINT)::VARCHAR FROM parquet_metadata('`+path+`') WHERE path_in_schema = 'id') AS max_id,
			(SELECT sum(stats_null_count)::VARCHAR FROM parquet_metadata('`+path+`') WHERE path_in_schema = 'str') AS str_nulls,
			(SELECT count(*) - count(str) FROM t)::VARCHAR AS want_str_nulls,
			(SELECT min(stats_min_value) FROM parquet_metadata('`+path+`') WHERE path_in_schema = 'str') AS min_str,
			(SELECT min(str) FROM t) AS want_min_str`)
		s := stats.Rows[0]
		if s["min_id"] != "0" || s["max_id"] != fmt.Sprint(rows-1) || s["str_nulls"] != s["want_str_nulls"] || s["min_str"] != s["want_min_str"] {
			t.Fatalf("pages %s: statistics DuckDB read: %v", vname, s)
		}
	}
}

// duckDouble is how DuckDB renders a DOUBLE as text: whole numbers with
// ".0".
func duckDouble(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
