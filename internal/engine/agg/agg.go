// Package agg is sluice's stateful grouped aggregation: GROUP BY keys, with
// optional event-time windows (tumbling, sliding, session), a watermark that
// bounds lateness and state, and Spark's output modes. It is a plain struct
// with no goroutines: a runner feeds it micro-batches of already-evaluated
// columns and takes its output after each one.
//
//	a, err := agg.New(agg.Config{...}, mem)
//	for each micro-batch:
//		a.Add(keys, eventTime, args, filters) // once or more
//		out, err := a.Flush()                  // rows to write for this micro-batch
//		state, err := a.MarshalBinary()        // checkpoint, committed with the output
//
// Semantics follow Spark Structured Streaming (3.x, with no-data batches,
// which Spark runs by default, folded into the micro-batch that moved the
// watermark):
//   - The watermark is max(event time seen) − Delay, never moving backwards.
//     It is updated at the end of each micro-batch (in Flush) and used from
//     then on; the first micro-batch runs without one. Rows whose window
//     contribution is dropped still count towards the maximum event time, as
//     in Spark. Unlike Spark, which truncates it to milliseconds, the
//     watermark keeps the microsecond precision of the event times.
//   - A row's contribution to a window whose end is ≤ the watermark current
//     when the row arrives is dropped (the window was already final); a row
//     every one of whose windows is closed counts as dropped late
//     ([Stats.DroppedLate]). For a session window the row's own window is
//     [t, t+Gap), so a row is late when t+Gap ≤ watermark. A row with a
//     null event time belongs to no window: it is dropped and counted
//     separately ([Stats.DroppedNullTime]; Spark drops these silently).
//   - Append: a window's rows are emitted once, when the watermark passes its
//     end (end ≤ watermark), and its state is then removed. Requires a window
//     and a watermark, as Spark requires a watermark for append with
//     aggregation.
//   - Update: each Flush emits the groups that changed in that micro-batch;
//     with a window and a watermark, windows it closes are removed after
//     being emitted.
//   - Complete: each Flush emits every group; nothing is ever removed, and,
//     as in Spark, the watermark (still tracked and reported) drops no rows:
//     "Complete mode requires all aggregate data to be preserved".
//   - Without a window the watermark is tracked and reported but neither
//     drops rows nor removes state (in Spark it only acts on a grouping key
//     that carries it), and rows with a null event time are kept.
//   - Sessions (session_window) are per group key: a row at t opens
//     [t, t+Gap); sessions whose intervals overlap or touch (next start ≤
//     current end, as Spark's MergingSessionsIterator) merge, including two
//     existing sessions bridged by a new row. A session already removed by
//     the watermark is not reopened: a row that would have extended it starts
//     a new session, as in Spark.
//
// first and last are defined by arrival order: the order of Add calls and of
// rows within a call, across checkpoints (Spark leaves it unspecified).
//
// Output rows are ordered by window start, then window end, then the keys
// ascending (nulls first; strings by bytes; NaN after every other float), so
// output is deterministic. Output columns are the window struct<start, end:
// timestamp[us, UTC]> (if any, named Config.WindowName), then the keys, then
// the aggregates, named as in Config.
//
// An Aggregator is not safe for concurrent use.
package agg

import (
	"errors"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Func is an aggregate function.
type Func uint8

const (
	Count         Func = iota + 1 // count(x): non-null x; int64
	CountStar                     // count(*): rows; int64
	CountDistinct                 // count(DISTINCT x): distinct non-null x; int64
	Sum                           // sum(x): int64 for integers (wrapping on overflow), float64 for floats; null if no non-null x
	Avg                           // avg(x): float64; null if no non-null x
	Min                           // min(x): the input type; null if no non-null x
	Max                           // max(x): the input type; null if no non-null x
	First                         // first(x): the first x in arrival order (nulls included, as Spark's first)
	Last                          // last(x): the last x in arrival order
)

// String returns the SQL name of f.
func (f Func) String() string {
	switch f {
	case Count:
		return "count"
	case CountStar:
		return "count(*)"
	case CountDistinct:
		return "count(DISTINCT)"
	case Sum:
		return "sum"
	case Avg:
		return "avg"
	case Min:
		return "min"
	case Max:
		return "max"
	case First:
		return "first"
	case Last:
		return "last"
	}
	return "Func(" + itoa(int64(f)) + ")"
}

// Spec is one aggregate of a Config.
type Spec struct {
	Func Func
	// Type is the input type: int64, int32, float64, string, bool,
	// timestamp (any unit) or date32 (Sum and Avg: int64, int32 or float64
	// only). Ignored for CountStar.
	Type arrow.DataType
	// Name is the output column's name.
	Name string
}

// WindowKind is the kind of event-time window.
type WindowKind uint8

const (
	NoWindow WindowKind = iota
	Tumbling            // window(ts, size[, slide = size[, offset]])
	Sliding             // window(ts, size, slide[, offset]) with slide ≤ size
	Session             // session_window(ts, gap)
)

// Window describes event-time windows, as Spark's window() and
// session_window(). Windows are [start, end): window(ts, '10 seconds')
// puts 12:00:10 into [12:00:10, 12:00:20). Durations must be whole
// microseconds.
type Window struct {
	Kind   WindowKind
	Size   time.Duration // Tumbling, Sliding
	Slide  time.Duration // Sliding; equal to Size (or zero) for Tumbling
	Offset time.Duration // Tumbling, Sliding: start times are offset + k·slide; |Offset| < Slide, as Spark's startTime
	Gap    time.Duration // Session: a session ends Gap after its last event
}

// Mode is an output mode.
type Mode uint8

const (
	Append Mode = iota + 1
	Update
	Complete
)

// Config configures an Aggregator.
type Config struct {
	// Keys are the group keys' names and types, in output order. Types:
	// string, int64, int32, bool, float64, timestamp (any unit), date32.
	Keys []arrow.Field
	// Aggs are the aggregates, in output order.
	Aggs []Spec
	// Window is the event-time window; NoWindow groups by Keys alone.
	Window Window
	// WindowName names the window column in the output. Default "window".
	WindowName string
	// Watermark enables the watermark, Delay (≥ 0) behind the largest event time.
	Watermark bool
	Delay     time.Duration
	// Mode is the output mode. Default (zero) Append, as Spark's.
	Mode Mode
}

// Stats is what the aggregator reports after each Flush, for progress.
type Stats struct {
	StateRows       int64     // groups (window × keys) held
	StateBytes      int64     // approximate memory held by state
	DroppedLate     int64     // rows dropped as late since New (or since the restored checkpoint's New)
	DroppedNullTime int64     // rows dropped for a null event time (windowed only), same span
	Watermark       time.Time // zero before the first one
}

var (
	// ErrConfig is returned (wrapped) by New for an invalid Config.
	ErrConfig = errors.New("agg: invalid config")
	// ErrInput is returned (wrapped) by Add when its arrays do not match the
	// Config (count, type or length). The Aggregator is unchanged.
	ErrInput = errors.New("agg: invalid input")
	// ErrCorrupt is returned (wrapped) by UnmarshalBinary for input that is
	// not a checkpoint of an Aggregator with the same Config. The
	// Aggregator is unchanged.
	ErrCorrupt = errors.New("agg: corrupt checkpoint")
)
