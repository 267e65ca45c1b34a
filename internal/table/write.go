package table

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	ictable "github.com/apache/iceberg-go/table"

	"github.com/sluice-dev/sluice/internal/pqwrite"
)

// Merge moves q's files into p: committing p then commits both. q is
// empty afterwards. Either may be empty.
func (p *PendingFiles) Merge(q *PendingFiles) {
	p.files = append(p.files, q.files...)
	p.rows += q.rows
	q.files, q.rows = nil, 0
}

// WriteBatches writes recs as one Parquet data file of the table, without
// committing it: [Table.CommitFiles] does, in one snapshot with any other
// pending files merged into the result ([PendingFiles.Merge]). recs must
// share one schema whose columns match [Table.ArrowSchema] (names, types,
// nullability and order; metadata may differ); WriteBatches does not
// release them. It is [Table.WriteFiles] for batches already in memory,
// and faster: it writes with the table's Parquet write properties as
// iceberg-go does, with package pqwrite's encoder where the schema and
// properties allow (pqarrow's otherwise), and computes no column
// statistics on the leaves whose Iceberg metrics mode is "none" (see
// [CreateOptions.NoStatsColumns]), whose statistics would be thrown
// away. Row groups hold at most
// write.parquet.row-group-limit rows and start anew past
// write.parquet.row-group-size-bytes. Zero rows write no file.
//
// The table must be unpartitioned (ingestion tables are). On error,
// nothing is left behind.
func (t *Table) WriteBatches(ctx context.Context, recs []arrow.RecordBatch) (*PendingFiles, error) {
	var rows int64
	for _, r := range recs {
		rows += r.NumRows()
	}
	if rows == 0 {
		return &PendingFiles{}, nil
	}
	if !t.tbl.Spec().IsUnpartitioned() {
		return nil, fmt.Errorf("table: writing data files of %s: partitioned tables are not supported", t.name)
	}
	w, err := t.fileWriter()
	if err != nil {
		return nil, err
	}
	df, err := w.write(ctx, recs)
	if err != nil {
		return nil, fmt.Errorf("table: writing data files of %s: %w", t.name, err)
	}
	return &PendingFiles{files: []iceberg.DataFile{df}, rows: rows}, nil
}

// fileWriter is what writing a data file of a table needs: immutable once
// made, so one may serve concurrent writes.
type fileWriter struct {
	dir      string // local directory of the data files
	loc      string // the same, as the table's metadata spells it
	sc       *arrow.Schema
	fileSc   *arrow.Schema // sc with Parquet field ids
	ice      *iceberg.Schema
	spec     iceberg.PartitionSpec
	props    iceberg.Properties
	sortID   int
	version  int
	pqProps  *parquet.WriterProperties
	arrProps pqarrow.ArrowWriterProperties
	fast     *pqwrite.Writer // nil: the schema or properties need pqarrow
}

// fileWriter returns the handle's file writer, made again when the schema
// or the properties changed.
func (t *Table) fileWriter() (*fileWriter, error) {
	ice := t.tbl.Schema()
	props := t.tbl.Properties()
	if w := t.writer; w != nil && w.ice.ID == ice.ID && sameProps(w.props, props) {
		return w, nil
	}
	fileSc, err := ictable.SchemaToArrowSchema(ice, nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("table: converting schema of %s to arrow: %w", t.name, err)
	}
	pqProps, err := writerProperties(ice, props)
	if err != nil {
		return nil, fmt.Errorf("table: write properties of %s: %w", t.name, err)
	}
	loc := strings.TrimSuffix(t.tbl.Location(), "/") + "/data"
	w := &fileWriter{
		dir: localPath(loc), loc: loc, sc: t.schema, fileSc: fileSc, ice: ice,
		spec: t.tbl.Spec(), props: props, sortID: t.tbl.SortOrder().OrderID(),
		version: t.tbl.Metadata().Version(), pqProps: pqProps,
		arrProps: pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()),
	}
	w.fast, err = pqwrite.New(fileSc, pqwrite.Options{Props: pqProps, StoreSchema: true, RowGroupBytes: rowGroupBytes(props)})
	if err != nil && !errors.Is(err, pqwrite.ErrUnsupported) {
		return nil, fmt.Errorf("table: Parquet writer of %s: %w", t.name, err)
	}
	t.writer = w
	return w, nil
}

func sameProps(a, b iceberg.Properties) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// countingWriter counts the bytes written to an open file. It also hides
// the file's Close from pqarrow's writer, which closes a sink it can.
type countingWriter struct {
	f *os.File
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.n += int64(n)
	return n, err
}

// write writes recs to one new Parquet file and returns its data file:
// with pqwrite when the schema and properties allow, else with pqarrow.
func (w *fileWriter) write(ctx context.Context, recs []arrow.RecordBatch) (iceberg.DataFile, error) {
	if w.fast == nil {
		return w.writeSeq(ctx, slices.Values(recs), len(recs) == 1)
	}
	for _, rec := range recs {
		if err := w.checkSchema(rec); err != nil {
			return nil, err
		}
	}
	return w.writeFile(func(cw io.Writer) (*metadata.FileMetaData, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return w.fast.Write(cw, recs)
	})
}

// checkSchema checks that rec's columns are the table's.
func (w *fileWriter) checkSchema(rec arrow.RecordBatch) error {
	if !arrow.TypeEqual(arrow.StructOf(rec.Schema().Fields()...), arrow.StructOf(w.fileSc.Fields()...)) {
		return fmt.Errorf("record schema %s does not match the table's %s", rec.Schema(), w.sc)
	}
	return nil
}

// writeReader writes the batches of rr to one new Parquet file and
// returns its data file. It does not release rr.
func (w *fileWriter) writeReader(ctx context.Context, rr array.RecordReader) (iceberg.DataFile, error) {
	df, err := w.writeSeq(ctx, func(yield func(arrow.RecordBatch) bool) {
		for rr.Next() && yield(rr.RecordBatch()) {
		}
	}, false)
	if err == nil {
		err = rr.Err()
	}
	if err != nil && df != nil {
		os.Remove(localPath(df.FilePath()))
		df = nil
	}
	return df, err
}

// writeSeq writes recs to one new Parquet file with pqarrow and returns
// its data file. single says recs is one batch: its row groups are then
// streamed to the file as they are encoded, not buffered.
func (w *fileWriter) writeSeq(ctx context.Context, recs iter.Seq[arrow.RecordBatch], single bool) (iceberg.DataFile, error) {
	return w.writeFile(func(cw io.Writer) (*metadata.FileMetaData, error) {
		pw, err := pqarrow.NewFileWriter(w.fileSc, cw, w.pqProps, w.arrProps)
		if err != nil {
			return nil, err
		}
		if err := w.writeBatches(ctx, pw, recs, single); err != nil {
			pw.Close()
			return nil, err
		}
		if err := pw.Close(); err != nil {
			return nil, err
		}
		return pw.FileMetadata()
	})
}

// writeBatches writes recs with pw.
func (w *fileWriter) writeBatches(ctx context.Context, pw *pqarrow.FileWriter, recs iter.Seq[arrow.RecordBatch], single bool) error {
	rgBytes := rowGroupBytes(w.props)
	for rec := range recs {
		if rec.NumRows() == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.checkSchema(rec); err != nil {
			return err
		}
		// The same columns under the schema with field ids (types equal
		// but for metadata).
		frec := array.NewRecordBatch(w.fileSc, rec.Columns(), rec.NumRows())
		if single {
			// One batch: its row groups go to the file column chunk by
			// column chunk, page by page, rather than being buffered
			// whole in memory (on a virtual machine, fresh memory costs
			// more than the copying). Write starts a row group every
			// write.parquet.row-group-limit rows.
			err := pw.Write(frec)
			frec.Release()
			if err != nil {
				return err
			}
			continue
		}
		if pw.RowGroupTotalBytesWritten() >= rgBytes {
			if err := pw.NewBufferedRowGroupChecked(); err != nil {
				frec.Release()
				return err
			}
		}
		err := pw.WriteBuffered(frec)
		frec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a new data file with encode and returns it. On error,
// nothing is left behind.
func (w *fileWriter) writeFile(encode func(io.Writer) (*metadata.FileMetaData, error)) (_ iceberg.DataFile, err error) {
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return nil, err
	}
	name, err := dataFileName()
	if err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(w.dir, name))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	cw := &countingWriter{f: f}
	meta, err := encode(cw)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return ictable.DataFileFromMetadata(ictable.DataFileArgs{
		Schema:        w.ice,
		Spec:          w.spec,
		Format:        iceberg.ParquetFile,
		Metadata:      meta,
		FilePath:      w.loc + "/" + name,
		FileSize:      cw.n,
		Content:       iceberg.EntryContentData,
		SortOrderID:   w.sortID,
		Properties:    w.props,
		FormatVersion: w.version,
	})
}

// dataFileName returns a new random data file name.
func dataFileName() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "00000-0-" + hex.EncodeToString(b[:]) + ".parquet", nil
}

func rowGroupBytes(props iceberg.Properties) int64 {
	if v, err := strconv.ParseInt(props.Get(ictable.ParquetRowGroupSizeBytesKey, ""), 10, 64); err == nil && v > 0 {
		return v
	}
	return ictable.ParquetRowGroupSizeBytesDefault
}

// writerProperties returns the Parquet writer properties for a table with
// schema sc and properties props: those iceberg-go's writer derives from
// the same properties, and no statistics on the leaves whose Iceberg
// metrics mode is "none" (their statistics would be thrown away).
func writerProperties(sc *iceberg.Schema, props iceberg.Properties) (*parquet.WriterProperties, error) {
	pageVersion := parquet.DataPageV2
	if props.Get(ictable.ParquetPageVersionKey, ictable.ParquetPageVersionDefault) == "1" {
		pageVersion = parquet.DataPageV1
	}
	codec, ok := codecs[props.Get(ictable.ParquetCompressionKey, ictable.ParquetCompressionDefault)]
	if !ok {
		return nil, fmt.Errorf("unknown compression codec %q", props[ictable.ParquetCompressionKey])
	}
	wp := []parquet.WriterProperty{
		parquet.WithMaxRowGroupLength(int64(props.GetInt(ictable.ParquetRowGroupLimitKey, ictable.ParquetRowGroupLimitDefault))),
		parquet.WithDataPageSize(int64(props.GetInt(ictable.ParquetPageSizeBytesKey, ictable.ParquetPageSizeBytesDefault))),
		parquet.WithDataPageVersion(pageVersion),
		parquet.WithBatchSize(int64(props.GetInt(ictable.ParquetPageRowLimitKey, ictable.ParquetPageRowLimitDefault))),
		parquet.WithDictionaryPageSizeLimit(int64(props.GetInt(ictable.ParquetDictSizeBytesKey, ictable.ParquetDictSizeBytesDefault))),
		parquet.WithCompression(codec),
		parquet.WithCompressionLevel(props.GetInt(ictable.ParquetCompressionLevelKey, ictable.ParquetCompressionLevelDefault)),
		parquet.WithDictionaryDefault(strings.EqualFold(props.Get(propDictDefault, "true"), "true")),
	}
	for k, v := range props {
		if col, ok := strings.CutPrefix(k, propDictColumnPrefix); ok && col != "" {
			wp = append(wp, parquet.WithDictionaryFor(col, strings.EqualFold(v, "true")))
		}
	}
	for _, leaf := range leaves(sc) {
		mode := props.Get(ictable.MetricsModeColumnConfPrefix+"."+leaf.name, props.Get(ictable.DefaultWriteMetricsModeKey, ictable.DefaultWriteMetricsModeDefault))
		if strings.EqualFold(strings.TrimSpace(mode), metricsNone) {
			wp = append(wp, parquet.WithStatsFor(leaf.path, false))
		}
	}
	return parquet.NewWriterProperties(wp...), nil
}

const metricsNone = "none"

var codecs = map[string]compress.Compression{
	"snappy":       compress.Codecs.Snappy,
	"zstd":         compress.Codecs.Zstd,
	"uncompressed": compress.Codecs.Uncompressed,
	"gzip":         compress.Codecs.Gzip,
	"brotli":       compress.Codecs.Brotli,
	"lz4":          compress.Codecs.Lz4,
	"lz4raw":       compress.Codecs.Lz4Raw,
}

// leaf is a primitive column of a schema: its Iceberg name ("value.tags.element")
// and its Parquet path ("value.tags.list.element").
type leaf struct{ name, path string }

func leaves(sc *iceberg.Schema) []leaf {
	var out []leaf
	var walk func(name, path string, t iceberg.Type)
	walk = func(name, path string, t iceberg.Type) {
		switch t := t.(type) {
		case *iceberg.StructType:
			for _, f := range t.FieldList {
				walk(join(name, f.Name), join(path, f.Name), f.Type)
			}
		case *iceberg.ListType:
			walk(name+".element", path+".list.element", t.Element)
		case *iceberg.MapType:
			walk(name+".key", path+".key_value.key", t.KeyType)
			walk(name+".value", path+".key_value.value", t.ValueType)
		default:
			out = append(out, leaf{name, path})
		}
	}
	root := sc.AsStruct()
	walk("", "", &root)
	return out
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}
