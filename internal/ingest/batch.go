package ingest

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

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
type batch struct {
	keyDec, valDec *schema.Decoder

	good, bad  *array.RecordBuilder
	gKey, gVal array.Builder
	gTS        *array.TimestampBuilder
	gTopic     *array.StringBuilder
	gPart      *array.Int32Builder
	gOff       *array.Int64Builder
	gSrc       *array.StringBuilder

	nGood, nBad int
	bytes       int64
	first       time.Time // when the first record of this batch was added
	next        kafka.Offsets
	// quarantined holds, per partition, the offset up to which the
	// quarantine table already holds refused records (from an earlier run
	// whose ingestion commit did not land): refused records below it are
	// skipped, so the quarantine stays exactly-once too.
	quarantined kafka.Offsets
	skipped     int
}

func newBatch(mem memory.Allocator, key, value *schema.Schema, start, quarantined kafka.Offsets) *batch {
	b := &batch{
		keyDec:      key.NewDecoder(),
		valDec:      value.NewDecoder(),
		good:        array.NewRecordBuilder(mem, IngestionSchema(key, value)),
		bad:         array.NewRecordBuilder(mem, QuarantineSchema),
		next:        start.Clone(),
		quarantined: quarantined,
	}
	b.keyDec.SetRoot(ColKey)
	b.valDec.SetRoot(ColValue)
	b.gKey, b.gVal = b.good.Field(0), b.good.Field(1)
	b.gTS = b.good.Field(2).(*array.TimestampBuilder)
	b.gTopic = b.good.Field(3).(*array.StringBuilder)
	b.gPart = b.good.Field(4).(*array.Int32Builder)
	b.gOff = b.good.Field(5).(*array.Int64Builder)
	b.gSrc = b.good.Field(6).(*array.StringBuilder)
	return b
}

// add decodes r into the batch: a row of the ingestion table, or, when the
// key or value does not decode or violates its schema, a row of the
// quarantine table. It reports whether r was refused.
func (b *batch) add(r *Record, now time.Time) (refused bool) {
	if b.nGood+b.nBad == 0 {
		b.first = now
	}
	b.next.Set(r.Topic, r.Partition, r.Offset+1)
	b.bytes += int64(len(r.Key) + len(r.Value))
	// The key is checked before the value is appended, so that a bad key
	// never leaves a value behind in the builder.
	// Errors name their path from the column: "value.amount: ...".
	err := b.keyDec.Check(r.Key)
	if err == nil {
		if err = b.valDec.Append(b.gVal, r.Value); err == nil {
			if kerr := b.keyDec.Append(b.gKey, r.Key); kerr != nil {
				panic("ingest: key passed Check but failed Append: " + kerr.Error())
			}
		}
	}
	if err != nil {
		b.quarantine(r, err.Error(), now)
		return true
	}
	b.gTS.Append(arrow.Timestamp(r.Timestamp.UnixMicro()))
	b.gTopic.Append(r.Topic)
	b.gPart.Append(r.Partition)
	b.gOff.Append(r.Offset)
	b.gSrc.Append(RecordSourceStream)
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
		good = b.good.NewRecordBatch()
		// The next batch is likely as large: reserve its slots now rather
		// than growing (copying) the buffers step by step.
		b.good.Reserve(b.nGood)
	}
	if b.nBad > 0 {
		bad = b.bad.NewRecordBatch()
	}
	b.nGood, b.nBad, b.skipped, b.bytes = 0, 0, 0, 0
	return good, bad
}

func (b *batch) release() {
	b.good.Release()
	b.bad.Release()
}
