package agg

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// maxWindowsPerRow bounds ceil(Size/Slide) for sliding windows, so that a
// mistyped slide cannot make every row fan out into millions of windows.
const maxWindowsPerRow = 10000

// windowTimeType is the type of the output window column's fields.
var windowTimeType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}

// withDefaults returns a copy of c with defaults filled in. It does not
// alias c's slices.
func (c Config) withDefaults() Config {
	c.Keys = append([]arrow.Field(nil), c.Keys...)
	c.Aggs = append([]Spec(nil), c.Aggs...)
	if c.WindowName == "" {
		c.WindowName = "window"
	}
	if c.Mode == 0 {
		c.Mode = Append
	}
	if c.Window.Kind == Tumbling && c.Window.Slide == 0 {
		c.Window.Slide = c.Window.Size
	}
	return c
}

// Validate reports whether c (after defaults) is usable; errors wrap
// ErrConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	for i, f := range c.Keys {
		if f.Name == "" {
			return configErr("key %d has no name", i)
		}
		if valKindOf(f.Type) == vNone {
			return configErr("key %q: unsupported type %s (want string, int64, int32, bool, float64, timestamp or date32)", f.Name, typeName(f.Type))
		}
	}
	for i, s := range c.Aggs {
		if s.Name == "" {
			return configErr("aggregate %d (%s) has no name", i, s.Func)
		}
		if s.Func < Count || s.Func > Last {
			return configErr("aggregate %q: unknown function %d", s.Name, s.Func)
		}
		if s.Func == CountStar {
			continue
		}
		vk := valKindOf(s.Type)
		if vk == vNone {
			return configErr("aggregate %q: %s of unsupported type %s", s.Name, s.Func, typeName(s.Type))
		}
		if (s.Func == Sum || s.Func == Avg) && !isNumeric(s.Type) {
			return configErr("aggregate %q: function %s requires numeric argument, got %s", s.Name, s.Func, typeName(s.Type))
		}
	}
	w := c.Window
	micro := func(name string, d time.Duration) error {
		if d%time.Microsecond != 0 {
			return configErr("window %s %s is not a whole number of microseconds", name, d)
		}
		return nil
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"size", w.Size}, {"slide", w.Slide}, {"offset", w.Offset}, {"gap", w.Gap}, {"watermark delay", c.Delay}} {
		if err := micro(d.name, d.d); err != nil {
			return err
		}
	}
	switch w.Kind {
	case NoWindow:
		if w.Size != 0 || w.Slide != 0 || w.Offset != 0 || w.Gap != 0 {
			return configErr("window durations set without a window kind")
		}
	case Tumbling, Sliding:
		if w.Size <= 0 {
			return configErr("the window duration (%s) must be greater than 0", w.Size)
		}
		if w.Slide <= 0 {
			return configErr("the slide duration (%s) must be greater than 0", w.Slide)
		}
		if w.Slide > w.Size {
			return configErr("the slide duration (%s) must be less than or equal to the window duration (%s)", w.Slide, w.Size)
		}
		if w.Kind == Tumbling && w.Slide != w.Size {
			return configErr("a tumbling window's slide (%s) must equal its size (%s); use Sliding", w.Slide, w.Size)
		}
		if w.Offset >= w.Slide || -w.Offset >= w.Slide {
			return configErr("the absolute value of the window offset (%s) must be less than the slide duration (%s)", w.Offset, w.Slide)
		}
		if n := (w.Size + w.Slide - 1) / w.Slide; n > maxWindowsPerRow {
			return configErr("window size %s / slide %s puts each row into %d windows (at most %d)", w.Size, w.Slide, n, maxWindowsPerRow)
		}
		if w.Gap != 0 {
			return configErr("gap is only for session windows")
		}
	case Session:
		if w.Gap <= 0 {
			return configErr("the session window gap (%s) must be greater than 0", w.Gap)
		}
		if w.Size != 0 || w.Slide != 0 || w.Offset != 0 {
			return configErr("size, slide and offset are not for session windows")
		}
	default:
		return configErr("unknown window kind %d", w.Kind)
	}
	if c.Delay < 0 {
		return configErr("watermark delay (%s) should not be negative", c.Delay)
	}
	if !c.Watermark && c.Delay != 0 {
		return configErr("watermark delay set without Watermark")
	}
	switch c.Mode {
	case Append:
		if w.Kind == NoWindow || !c.Watermark {
			return configErr("Append output mode not supported when there are streaming aggregations on streaming DataFrames/DataSets without watermark (append needs an event-time window and a watermark; use Update or Complete)")
		}
	case Update, Complete:
	default:
		return configErr("unknown output mode %d", c.Mode)
	}
	return nil
}

func typeName(t arrow.DataType) string {
	if t == nil {
		return "<nil>"
	}
	return t.String()
}

func isNumeric(t arrow.DataType) bool {
	if t == nil {
		return false
	}
	switch t.ID() {
	case arrow.INT64, arrow.INT32, arrow.FLOAT64:
		return true
	}
	return false
}

// outputSchema builds the schema documented in the package doc.
func (c *Config) outputSchema() *arrow.Schema {
	var fields []arrow.Field
	if c.Window.Kind != NoWindow {
		fields = append(fields, arrow.Field{Name: c.WindowName, Type: arrow.StructOf(
			arrow.Field{Name: "start", Type: windowTimeType},
			arrow.Field{Name: "end", Type: windowTimeType},
		)})
	}
	for _, k := range c.Keys {
		fields = append(fields, arrow.Field{Name: k.Name, Type: k.Type, Nullable: true, Metadata: k.Metadata})
	}
	for _, s := range c.Aggs {
		fields = append(fields, arrow.Field{Name: s.Name, Type: s.outType(), Nullable: s.nullable()})
	}
	return arrow.NewSchema(fields, nil)
}

func (s Spec) outType() arrow.DataType {
	switch s.Func {
	case Count, CountStar, CountDistinct:
		return arrow.PrimitiveTypes.Int64
	case Sum:
		if s.Type.ID() == arrow.FLOAT64 {
			return arrow.PrimitiveTypes.Float64
		}
		return arrow.PrimitiveTypes.Int64
	case Avg:
		return arrow.PrimitiveTypes.Float64
	}
	return s.Type
}

func (s Spec) nullable() bool {
	switch s.Func {
	case Count, CountStar, CountDistinct:
		return false
	}
	return true
}

// fingerprint identifies everything in c that shapes the state, so that a
// checkpoint is not restored into an incompatible Aggregator. Names are
// left out: renaming an output column keeps the state.
func (c *Config) fingerprint() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "keys:%d;", len(c.Keys))
	for _, k := range c.Keys {
		fmt.Fprintf(h, "%s;", typeName(k.Type))
	}
	fmt.Fprintf(h, "aggs:%d;", len(c.Aggs))
	for _, s := range c.Aggs {
		t := "-"
		if s.Func != CountStar {
			t = typeName(s.Type)
		}
		fmt.Fprintf(h, "%d:%s;", s.Func, t)
	}
	fmt.Fprintf(h, "win:%d/%d/%d/%d/%d;wm:%t/%d;mode:%d", c.Window.Kind, c.Window.Size, c.Window.Slide,
		c.Window.Offset, c.Window.Gap, c.Watermark, c.Delay, c.Mode)
	return h.Sum64()
}
