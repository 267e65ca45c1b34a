package ingest

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/bufpool"
	"github.com/sluice-dev/sluice/internal/schema"
	"github.com/sluice-dev/sluice/internal/source/kafka"
)

// Column names of an ingestion table, as the seed specifies them.
const (
	ColKey          = "key"
	ColValue        = "value"
	ColTimestamp    = "stream_record_timestamp"
	ColTopic        = "kafka_topic"
	ColPartition    = "kafka_partition"
	ColOffset       = "kafka_offset"
	ColRecordSource = "record_source"

	// RecordSourceStream marks rows ingested from the stream (forward fill).
	RecordSourceStream = "stream"
	// RecordSourceBackfill marks rows merged from a backfill source.
	RecordSourceBackfill = "backfill"
)

// Extra columns of a quarantine table.
const (
	ColRawKey        = "raw_key"
	ColRawValue      = "raw_value"
	ColReason        = "reason"
	ColQuarantinedAt = "quarantined_at"
)

var tsType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// IngestionSchema is the Arrow schema of an ingestion table whose key and
// value columns follow the given schemas.
func IngestionSchema(key, value *schema.Schema) *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: ColKey, Type: key.ArrowType(), Nullable: true},
		{Name: ColValue, Type: value.ArrowType(), Nullable: true},
		{Name: ColTimestamp, Type: tsType, Nullable: true},
		{Name: ColTopic, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColPartition, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: ColOffset, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: ColRecordSource, Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
}

// QuarantineSchema is the Arrow schema of a quarantine table: the raw bytes,
// where they came from, and why they were refused.
var QuarantineSchema = arrow.NewSchema([]arrow.Field{
	{Name: ColRawKey, Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: ColRawValue, Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: ColTimestamp, Type: tsType, Nullable: true},
	{Name: ColTopic, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColPartition, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ColOffset, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: ColReason, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColQuarantinedAt, Type: tsType, Nullable: true},
}, nil)

// Record is one consumed message, as the batch needs it.
type Record struct {
	Key, Value []byte
	Timestamp  time.Time
	Topic      string
	Partition  int32
	Offset     int64
}

// batch accumulates one micro-batch: decoded rows for the ingestion table,
// refused records for the quarantine table, and the offsets after the last
// record added. It does no I/O and is not goroutine-safe.
//
// The rows' columns are plain Go slices rather than Arrow builders, turned
// into Arrow arrays without copying when the batch is taken: the decoders
// append the key and value to [schema.Column]s; the Kafka metadata go to
// slices (the topic as runs of equal topics), and record_source, constant,
// costs nothing per record. Per record, that is a few appends to slices
// rather than a dozen builder calls.
type batch struct {
	keyDec, valDec *schema.Decoder

	schema     *arrow.Schema // of the ingestion table
	key, val   *schema.Column
	ts, off    []int64
	part       []int32
	topics     []topicRun
	src, topic repeated // the last record_source and single-topic columns
	bad        *array.RecordBuilder
	// pool recycles the buffers of the rows' arrays: the committer
	// releases a batch once it is written, and nothing else holds it.
	pool *bufpool.Pool

	nGood, nBad int
	bytes       int64
	first       time.Time // when the first record of this batch was added
	next        kafka.Offsets
	// nextTopic's partitions in next (Offsets never replaces a topic's map).
	nextTopic string
	nextParts map[int32]int64
	// quarantined holds, per partition, the offset up to which the
	// quarantine table already holds refused records (from an earlier run
	// whose ingestion commit did not land): refused records below it are
	// skipped, so the quarantine stays exactly-once too.
	quarantined kafka.Offsets
	skipped     int
}

// topicRun is n consecutive rows of one topic.
type topicRun struct {
	topic string
	n     int
}

// maxPooled bounds the bytes of free buffers a batch keeps for the next
// (about two batches of the default size: one being written while the
// next is decoded).
const maxPooled = 128 << 20

func newBatch(mem memory.Allocator, key, value *schema.Schema, start, quarantined kafka.Offsets) *batch {
	pool := bufpool.New(maxPooled)
	b := &batch{
		keyDec:      key.NewDecoder(),
		valDec:      value.NewDecoder(),
		schema:      IngestionSchema(key, value),
		key:         key.NewPooledColumn(pool),
		val:         value.NewPooledColumn(pool),
		pool:        pool,
		bad:         array.NewRecordBuilder(mem, QuarantineSchema),
		next:        start.Clone(),
		quarantined: quarantined,
	}
	b.keyDec.SetRoot(ColKey)
	b.valDec.SetRoot(ColValue)
	return b
}

// add decodes r into the batch: a row of the ingestion table, or, when the
// key or value does not decode or violates its schema, a row of the
// quarantine table. It reports whether r was refused.
func (b *batch) add(r *Record, now time.Time) (refused bool) {
	if b.nGood+b.nBad == 0 {
		b.first = now
	}
	if b.nextParts == nil || r.Topic != b.nextTopic {
		b.next.Set(r.Topic, r.Partition, r.Offset+1)
		b.nextTopic, b.nextParts = r.Topic, b.next[r.Topic]
	} else { // the same topic as the last record: one map update, not two
		b.nextParts[r.Partition] = r.Offset + 1
	}
	b.bytes += int64(len(r.Key) + len(r.Value))
	// The key is checked before the value is appended, so that a bad key
	// never leaves a value behind in its column.
	// Errors name their path from the column: "value.amount: ...".
	err := b.keyDec.Check(r.Key)
	if err == nil {
		if err = b.valDec.AppendColumn(b.val, r.Value); err == nil {
			if kerr := b.keyDec.AppendColumn(b.key, r.Key); kerr != nil {
				panic("ingest: key passed Check but failed Append: " + kerr.Error())
			}
		}
	}
	if err != nil {
		b.quarantine(r, err.Error(), now)
		return true
	}
	b.ts = append(b.ts, r.Timestamp.UnixMicro())
	b.part = append(b.part, r.Partition)
	b.off = append(b.off, r.Offset)
	if k := len(b.topics) - 1; k >= 0 && b.topics[k].topic == r.Topic {
		b.topics[k].n++
	} else {
		b.topics = append(b.topics, topicRun{r.Topic, 1})
	}
	b.nGood++
	return false
}

func (b *batch) quarantine(r *Record, reason string, now time.Time) {
	if q, ok := b.quarantined.Get(r.Topic, r.Partition); ok && r.Offset < q {
		b.skipped++ // already in the quarantine table from an earlier run
		return
	}
	f := b.bad
	appendBytes(f.Field(0).(*array.BinaryBuilder), r.Key)
	appendBytes(f.Field(1).(*array.BinaryBuilder), r.Value)
	f.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Timestamp.UnixMicro()))
	f.Field(3).(*array.StringBuilder).Append(r.Topic)
	f.Field(4).(*array.Int32Builder).Append(r.Partition)
	f.Field(5).(*array.Int64Builder).Append(r.Offset)
	f.Field(6).(*array.StringBuilder).Append(reason)
	f.Field(7).(*array.TimestampBuilder).Append(arrow.Timestamp(now.UnixMicro()))
	b.nBad++
}

func appendBytes(b *array.BinaryBuilder, v []byte) {
	if v == nil {
		b.AppendNull()
		return
	}
	b.Append(v)
}

func (b *batch) len() int { return b.nGood + b.nBad + b.skipped }

// take returns the built rows (either may be nil when empty) and resets the
// builders for the next batch; the offsets carry on. The caller releases
// the returned records.
func (b *batch) take() (good, bad arrow.RecordBatch) {
	if b.nGood > 0 {
		good = b.takeGood()
	}
	if b.nBad > 0 {
		bad = b.bad.NewRecordBatch()
	}
	b.nGood, b.nBad, b.skipped, b.bytes = 0, 0, 0, 0
	return good, bad
}

// takeGood builds the ingestion rows. The next batch is likely as large:
// the key and value columns keep room for as many rows, and the metadata
// slices are made as large, rather than growing (copying) step by step.
func (b *batch) takeGood() arrow.RecordBatch {
	n := b.nGood
	cols := []arrow.Array{
		b.key.NewArray(),
		b.val.NewArray(),
		b.fixedArray(tsType, arrow.Int64Traits.CastToBytes(b.ts), n),
		nil, // topic
		b.fixedArray(arrow.PrimitiveTypes.Int32, arrow.Int32Traits.CastToBytes(b.part), n),
		b.fixedArray(arrow.PrimitiveTypes.Int64, arrow.Int64Traits.CastToBytes(b.off), n),
		b.src.get(RecordSourceStream, n),
	}
	if len(b.topics) == 1 { // the usual case: one topic, often the same count
		cols[3] = b.topic.get(b.topics[0].topic, n)
	} else {
		cols[3] = topicArray(b.topics, n)
	}
	good := array.NewRecordBatch(b.schema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	// The arrays own the old slices now: start new ones.
	b.ts, b.off, b.part = b.pool.Int64s(n), b.pool.Int64s(n), b.pool.Int32s(n)
	b.topics = b.topics[:0]
	return good
}

// fixedArray makes an array of n fixed-width values of type dt, none null,
// over data (not copied, and given back to the pool on release).
func (b *batch) fixedArray(dt arrow.DataType, data []byte, n int) arrow.Array {
	buf := b.pool.Buffer(data)
	d := array.NewData(dt, n, []*memory.Buffer{nil, buf}, nil, 0, 0)
	buf.Release() // d holds it
	defer d.Release()
	return array.MakeFromData(d)
}

// stringArray makes a utf8 array, none null, over offsets and data (not
// copied).
func stringArray(offsets []int32, data []byte) arrow.Array {
	d := array.NewData(arrow.BinaryTypes.String, len(offsets)-1, []*memory.Buffer{
		nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets)), memory.NewBufferBytes(data),
	}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// topicArray makes the topic column of n rows from its runs.
func topicArray(runs []topicRun, n int) arrow.Array {
	total := 0
	for _, r := range runs {
		total += len(r.topic) * r.n
	}
	offsets, data := make([]int32, 0, n+1), make([]byte, 0, total)
	for _, r := range runs {
		offsets, data = repeat(offsets, data, r.topic, r.n)
	}
	return stringArray(append(offsets, int32(len(data))), data)
}

// repeated is a utf8 column of n rows holding v, kept to be shared by
// batches of the same size: arrays are immutable.
type repeated struct {
	v   string
	n   int
	arr arrow.Array
}

// get returns (a reference to) a column of n rows holding v.
func (r *repeated) get(v string, n int) arrow.Array {
	if r.arr == nil || r.v != v || r.n != n {
		r.release()
		r.v, r.n, r.arr = v, n, repeatArray(v, n)
	}
	r.arr.Retain()
	return r.arr
}

func (r *repeated) release() {
	if r.arr != nil {
		r.arr.Release()
		r.arr = nil
	}
}

// repeatArray makes a utf8 column of n rows holding v.
func repeatArray(v string, n int) arrow.Array {
	offsets, data := repeat(make([]int32, 0, n+1), make([]byte, 0, len(v)*n), v, n)
	return stringArray(append(offsets, int32(len(data))), data)
}

// repeat appends n rows holding v to a utf8 column's offsets and data.
func repeat(offsets []int32, data []byte, v string, n int) ([]int32, []byte) {
	at := len(data)
	for i := range n {
		offsets = append(offsets, int32(at+i*len(v)))
	}
	if n > 0 {
		data = append(data, v...)
		for len(data)-at < n*len(v) { // double the copied part
			data = append(data, data[at:min(len(data), at+n*len(v)-(len(data)-at))]...)
		}
	}
	return offsets, data
}

func (b *batch) release() {
	b.src.release()
	b.topic.release()
	b.bad.Release()
}
