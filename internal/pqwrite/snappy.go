package pqwrite

import (
	"io"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
)

// fastSnappy is the Parquet Snappy codec sluice registers (for pqarrow as
// well as pqwrite) in place of
// arrow-go's default. The default encodes with S2's "better" mode, which
// took 12% of ingestion CPU; S2's plain Snappy mode writes the same Snappy
// format (any reader decodes it) at a somewhat lower compression ratio, for
// several times less CPU. Decoding is unchanged.
type fastSnappy struct{}

func (fastSnappy) Encode(dst, src []byte) []byte { return s2.EncodeSnappy(dst, src) }
func (f fastSnappy) EncodeLevel(dst, src []byte, _ int) []byte {
	return f.Encode(dst, src)
}

func (fastSnappy) Decode(dst, src []byte) []byte {
	dst, err := snappy.Decode(dst, src)
	if err != nil {
		panic(err)
	}
	return dst
}

func (fastSnappy) DecodeWithError(dst, src []byte) ([]byte, error) { return snappy.Decode(dst, src) }
func (fastSnappy) NewReader(r io.Reader) io.ReadCloser             { return io.NopCloser(snappy.NewReader(r)) }
func (fastSnappy) CompressBound(n int64) int64                     { return int64(s2.MaxEncodedLen(int(n))) }
func (fastSnappy) NewWriter(w io.Writer) io.WriteCloser {
	return s2.NewWriter(w, s2.WriterSnappyCompat())
}
func (f fastSnappy) NewWriterLevel(w io.Writer, _ int) (io.WriteCloser, error) {
	return f.NewWriter(w), nil
}

func init() { compress.RegisterCodec(compress.Codecs.Snappy, fastSnappy{}) }
