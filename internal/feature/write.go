package feature

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ParquetRowGroupRows is the row group size of training set files.
const ParquetRowGroupRows = 256 << 10

// writerProperties are fixed: the same rows always make the same bytes.
func writerProperties() (*parquet.WriterProperties, pqarrow.ArrowWriterProperties) {
	return parquet.NewWriterProperties(
			parquet.WithCompression(compress.Codecs.Snappy),
			parquet.WithDictionaryDefault(false),
			parquet.WithMaxRowGroupLength(ParquetRowGroupRows),
			parquet.WithCreatedBy("sluice"),
		),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())
}

// WriteParquet streams rdr into w as one Parquet file (snappy, no
// dictionaries, row groups of ParquetRowGroupRows, the Arrow schema
// stored) and returns the number of rows. Batches are re-cut to BatchRows
// first, so the bytes depend only on the rows: a training set written
// from a [Result] and one written from its Arrow stream are identical.
// progress, if not nil, is called after each batch with the rows so far.
// WriteParquet does not release rdr.
func WriteParquet(w io.Writer, rdr array.RecordReader, progress func(rows int64)) (int64, error) {
	props, aprops := writerProperties()
	fw, err := pqarrow.NewFileWriter(rdr.Schema(), w, props, aprops)
	if err != nil {
		return 0, fmt.Errorf("writing parquet: %w", err)
	}
	rdr.Retain()
	rc := newRechunker(rdr, BatchRows)
	defer rc.Release()
	var rows int64
	for rc.Next() {
		rec := rc.RecordBatch()
		if err := fw.WriteBuffered(rec); err != nil {
			fw.Close()
			return rows, fmt.Errorf("writing parquet: %w", err)
		}
		rows += rec.NumRows()
		if progress != nil {
			progress(rows)
		}
	}
	if err := rc.Err(); err != nil {
		fw.Close()
		return rows, err
	}
	if err := fw.Close(); err != nil {
		return rows, fmt.Errorf("writing parquet: %w", err)
	}
	return rows, nil
}

// WriteParquetFile writes rdr to path through a temporary file in the
// same directory that is renamed into place on success, so path never
// holds half a training set.
func WriteParquetFile(path string, rdr array.RecordReader, progress func(rows int64)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("creating %s: %w", path, err)
	}
	// Hide Close: the Parquet writer closes a sink that has one.
	rows, err := WriteParquet(struct{ io.Writer }{tmp}, rdr, progress)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return rows, err
	}
	return rows, nil
}

// WriteArrowStream writes rdr to w in the Arrow IPC streaming format, one
// message per batch, and returns the number of rows. flush, if not nil,
// is called after each batch.
func WriteArrowStream(w io.Writer, rdr array.RecordReader, flush func()) (int64, error) {
	iw := ipc.NewWriter(w, ipc.WithSchema(rdr.Schema()))
	var rows int64
	for rdr.Next() {
		rec := rdr.RecordBatch()
		if err := iw.Write(rec); err != nil {
			iw.Close()
			return rows, err
		}
		rows += rec.NumRows()
		if flush != nil {
			flush()
		}
	}
	if err := rdr.Err(); err != nil {
		// No end-of-stream marker: a reader sees a truncated stream.
		return rows, err
	}
	return rows, errors.Join(iw.Close())
}
