package window

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Times in this package are microseconds since the Unix epoch, as the
// feature log's timestamp column stores them.
const (
	usSecond = int64(time.Second / time.Microsecond)
	usMinute = 60 * usSecond
	usHour   = 60 * usMinute
	usDay    = 24 * usHour
)

// The tile levels: a tile of level l covers [start, start+tileSize[l]),
// start a multiple of tileSize[l]. Tiles of a level are stored in chunks
// of chunkSize[l] (one blob per entity and chunk), so a blob holds at most
// 60 tiles (32 for days).
var (
	tileSize  = [...]int64{usSecond, usMinute, usHour, usDay}
	chunkSize = [...]int64{usMinute, usHour, usDay, 32 * usDay}
)

const numLevels = len(tileSize)

// precision returns the level whose tile size is the window's tail
// precision.
func precision(w int64) int {
	switch {
	case w <= usHour:
		return 0
	case w <= usDay:
		return 1
	case w <= 60*usDay:
		return 2
	}
	return 3
}

// top returns the coarsest level a window of length w combines: the
// largest tile that fits in the window. Coarser levels would only serve
// the rare read whose start falls on their boundary, and storing them
// costs a blob write per entity and fold.
func top(w int64) int {
	l := precision(w)
	for l+1 < numLevels && tileSize[l+1] <= w {
		l++
	}
	return l
}

// Precision is the step in which the start of a window of length w moves.
func Precision(w time.Duration) time.Duration {
	return time.Duration(tileSize[precision(w.Microseconds())]) * time.Microsecond
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorTo(a, b int64) int64 { return floorDiv(a, b) * b }
func ceilTo(a, b int64) int64  { return -floorDiv(-a, b) * b }

// Start returns the first instant of the window of length w that ends at
// t: t - w rounded up to the window's precision. The window is [Start, t].
func Start(t, w int64) int64 { return ceilTo(t-w, tileSize[precision(w)]) }

// tileRef is one tile.
type tileRef struct {
	level int
	start int64
}

// decompose returns the tiles that cover [start, t] for a window of
// precision level p: aligned tiles of growing size, the last one holding t
// (a tile holds only what happened up to the read time, so the last tile
// needs no cut).
func decompose(dst []tileRef, start, t int64, p, top int) []tileRef {
	lv := p
	for cur := start; cur <= t; {
		for lv+1 <= top && cur%tileSize[lv+1] == 0 {
			lv++
		}
		dst = append(dst, tileRef{lv, cur})
		cur += tileSize[lv]
	}
	return dst
}

// PropDef is the feature log's table property holding its [Def].
const PropDef = "sluice.windowed_features"

// Def is what reading a windowed feature table needs: its key columns,
// timestamp column and features. The pipeline that writes the feature log
// stores it as the table property [PropDef].
type Def struct {
	Keys     []string     `json:"keys"`
	TimeKey  string       `json:"timestamp"`
	Features []FeatureDef `json:"features"`

	levels    int     // lowest tile level kept (numLevels: none)
	retention []int64 // per level: how long its tiles are read after they end (0: not kept)
	windowed  []int   // indexes of features with a window
}

// FeatureDef is one feature of a [Def].
type FeatureDef struct {
	Name     string `json:"name"`
	Function string `json:"function"`
	// Window is the window's length as written (1h, 30d), "" for none.
	Window string `json:"window,omitempty"`

	w int64 // the window in µs, 0 for none
}

// WindowLength returns the feature's window, 0 for none.
func (f FeatureDef) WindowLength() time.Duration { return time.Duration(f.w) * time.Microsecond }

// Def returns the spec's Def; the spec must be valid.
func (s Spec) Def() *Def {
	d := &Def{TimeKey: s.TimestampColumn}
	for _, k := range s.Entity {
		d.Keys = append(d.Keys, k.Name)
	}
	for _, f := range s.Features {
		d.Features = append(d.Features, FeatureDef{Name: f.Name, Function: f.Function, Window: f.Window})
	}
	if err := d.init(); err != nil {
		panic(err) // Validate accepted the spec
	}
	return d
}

// ParseDef reads a Def from its property value.
func ParseDef(v string) (*Def, error) {
	var d Def
	if err := json.Unmarshal([]byte(v), &d); err != nil {
		return nil, fmt.Errorf("property %s: %w", PropDef, err)
	}
	if err := d.init(); err != nil {
		return nil, fmt.Errorf("property %s: %w", PropDef, err)
	}
	return &d, nil
}

// Encode returns the property value of d.
func (d *Def) Encode() string {
	b, _ := json.Marshal(d)
	return string(b)
}

func (d *Def) init() error {
	if len(d.Keys) == 0 || d.TimeKey == "" || len(d.Features) == 0 {
		return fmt.Errorf("a windowed feature definition needs keys, a timestamp and features")
	}
	d.levels = numLevels
	d.retention = make([]int64, numLevels)
	d.windowed = d.windowed[:0]
	for i := range d.Features {
		f := &d.Features[i]
		if !validFunction(f.Function) {
			return fmt.Errorf("feature %s: unknown function %q", f.Name, f.Function)
		}
		f.w = 0
		if f.Window == "" {
			if f.Function != "last" {
				return fmt.Errorf("feature %s: %s needs a window", f.Name, f.Function)
			}
			continue
		}
		w, err := ParseDuration(f.Window)
		if err != nil {
			return fmt.Errorf("feature %s: %w", f.Name, err)
		}
		f.w = w.Microseconds()
		d.windowed = append(d.windowed, i)
		p := precision(f.w)
		d.levels = min(d.levels, p)
		for l := p; l <= top(f.w); l++ {
			d.retention[l] = max(d.retention[l], f.w)
		}
	}
	return nil
}

func validFunction(f string) bool {
	for _, g := range Functions {
		if g == f {
			return true
		}
	}
	return false
}

// FeatureNames returns the features' names.
func (d *Def) FeatureNames() []string {
	out := make([]string, len(d.Features))
	for i, f := range d.Features {
		out[i] = f.Name
	}
	return out
}

// Feature returns the index of the named feature, or -1.
func (d *Def) Feature(name string) int {
	for i, f := range d.Features {
		if strings.EqualFold(f.Name, name) {
			return i
		}
	}
	return -1
}
