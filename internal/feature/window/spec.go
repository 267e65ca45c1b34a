// Package window implements declarative windowed features, the
// Tecton/Feast-style shorthand of docs/features.md: a YAML spec names a
// source table, the entity, the event time and features such as "sum of
// value.revenue over 1h". The spec compiles to an ordinary pipeline (the
// same engine as any SQL pipeline) that writes a feature log: one row per
// source event with the entity keys, the event time and each feature's
// input. Reading a feature as of time t aggregates the feature log:
//
//   - offline (training sets), straight from the log's rows (Values);
//   - online, from pre-aggregated time tiles that the log's rows are folded
//     into as they are synced (Fold), combined at read time (Read).
//
// Both read the same window, [Start(t, w), t]: exact at the end (every
// event up to t, nothing after it) and starting at t - w rounded up to the
// window's tile precision (1 s for windows up to 1 h, 1 min up to 1 day,
// 1 h up to 60 days, 1 day beyond). The tiles live in four levels (1 s,
// 1 min, 1 h, 1 day), so a read combines at most a few hundred tiles
// however long the window, and the online store keeps a bounded number of
// tiles per entity.
package window

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/internal/ident"
)

// ErrInvalid is wrapped by every error that a bad spec causes (HTTP 400).
var ErrInvalid = errors.New("window: invalid windowed feature spec")

// Functions are the aggregation functions a feature may use.
var Functions = []string{"count", "sum", "avg", "min", "max", "count_distinct", "last"}

// Spec is a windowed feature table's definition (docs/features.md).
type Spec struct {
	// Name is the feature table's three-part name.
	Name string `yaml:"name" json:"name"`
	// Source is the table the events come from, read as a stream.
	Source string `yaml:"source" json:"source"`
	// Entity maps each entity key column to the SQL expression over the
	// source that computes it, in key order.
	Entity Entity `yaml:"entity" json:"entity"`
	// Timestamp is the SQL expression of the event time (a timestamp).
	Timestamp string `yaml:"timestamp" json:"timestamp"`
	// TimestampColumn names the event time column of the feature log.
	// Default: the last name part of Timestamp (value.event_ts ->
	// event_ts), or event_ts.
	TimestampColumn string    `yaml:"timestamp_column,omitempty" json:"timestamp_column,omitempty"`
	Features        []Feature `yaml:"features" json:"features"`
	// TTL, if set, makes an entity whose newest event is older than this
	// read as OUTSIDE_MAX_AGE online and as nulls in training sets.
	TTL string `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	// Online publishes the features to the online store continuously.
	Online bool `yaml:"online,omitempty" json:"online,omitempty"`
	// Trigger is the pipeline's trigger; default continuous.
	Trigger string `yaml:"trigger,omitempty" json:"trigger,omitempty"`
}

// Feature is one windowed feature.
type Feature struct {
	Name     string `yaml:"name" json:"name"`
	Function string `yaml:"function" json:"function"`
	// Column is the SQL expression aggregated; count takes none.
	Column string `yaml:"column,omitempty" json:"column,omitempty"`
	// Filter is a SQL condition: events failing it do not count.
	Filter string `yaml:"filter,omitempty" json:"filter,omitempty"`
	// Window is the window's length (1h, 30d); last may omit it (the
	// newest value ever, within the TTL).
	Window string `yaml:"window,omitempty" json:"window,omitempty"`
}

// KeyExpr is one entity key column.
type KeyExpr struct {
	Name string
	Expr string
}

// Entity is an ordered mapping of key columns to expressions.
type Entity []KeyExpr

// UnmarshalYAML reads a mapping, keeping its order.
func (e *Entity) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: entity must be a mapping of key column to expression, e.g. {user_id: value.user_id}", n.Line)
	}
	*e = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: entity key %s: the expression must be a string", v.Line, k.Value)
		}
		*e = append(*e, KeyExpr{Name: k.Value, Expr: v.Value})
	}
	return nil
}

// MarshalYAML writes a mapping in order.
func (e Entity) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range e {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k.Name}, &yaml.Node{Kind: yaml.ScalarNode, Value: k.Expr})
	}
	return n, nil
}

// MarshalJSON writes an object in order.
func (e Entity) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range e {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k.Name)
		vb, _ := json.Marshal(k.Expr)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads an object, keeping its order (JSON is YAML).
func (e *Entity) UnmarshalJSON(b []byte) error {
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return err
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return e.UnmarshalYAML(n.Content[0])
	}
	return e.UnmarshalYAML(&n)
}

// IsSpec reports whether a YAML or JSON document looks like a windowed
// feature spec (it has a source and features) rather than a plain feature
// table's.
func IsSpec(b []byte) bool {
	var probe struct {
		Source   any `yaml:"source"`
		Features any `yaml:"features"`
	}
	if yaml.Unmarshal(b, &probe) != nil {
		return false
	}
	return probe.Source != nil && probe.Features != nil
}

// ParseSpec reads a YAML (or JSON) spec strictly and validates it.
func ParseSpec(b []byte) (Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%w: parsing the spec: %w", ErrInvalid, err)
	}
	return s, s.Validate()
}

var columnName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the spec's shape; expressions are checked when the
// pipeline compiles.
func (s *Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if s.Name == "" {
		return bad("name is missing: give the feature table's three-part name, e.g. main.features.user_activity")
	}
	if _, err := ident.Parse(s.Name); err != nil {
		return bad("name %q: %v", s.Name, err)
	}
	if s.Source == "" {
		return bad("source is missing: give the table the events come from, e.g. main.demo.events_ingestion")
	}
	if _, err := ident.Parse(s.Source); err != nil {
		return bad("source %q: %v", s.Source, err)
	}
	if len(s.Entity) == 0 {
		return bad("entity is missing: map each key column to its expression, e.g. entity: {user_id: value.user_id}")
	}
	if strings.TrimSpace(s.Timestamp) == "" {
		return bad("timestamp is missing: give the event time's expression, e.g. timestamp: value.event_ts")
	}
	if s.TimestampColumn == "" {
		s.TimestampColumn = "event_ts"
		if i := strings.LastIndexByte(s.Timestamp, '.'); columnName.MatchString(s.Timestamp[i+1:]) {
			s.TimestampColumn = s.Timestamp[i+1:]
		}
	}
	seen := map[string]string{}
	claim := func(name, what string) error {
		if !columnName.MatchString(name) {
			return bad("%s %q is not a column name (letters, digits and _, not starting with a digit)", what, name)
		}
		low := strings.ToLower(name)
		if prev, ok := seen[low]; ok {
			return bad("%s %q clashes with %s of the same name: rename one", what, name, prev)
		}
		seen[low] = what
		return nil
	}
	for _, k := range s.Entity {
		if err := claim(k.Name, "entity key"); err != nil {
			return err
		}
		if strings.TrimSpace(k.Expr) == "" {
			return bad("entity key %s has no expression", k.Name)
		}
	}
	if err := claim(s.TimestampColumn, "timestamp column"); err != nil {
		return err
	}
	if len(s.Features) == 0 {
		return bad("features is empty: list at least one, e.g. {name: event_count_1h, function: count, window: 1h}")
	}
	for i := range s.Features {
		f := &s.Features[i]
		f.Function = strings.ToLower(strings.TrimSpace(f.Function))
		if f.Name == "" {
			return bad("feature %d has no name", i+1)
		}
		if err := claim(f.Name, "feature"); err != nil {
			return err
		}
		if !slices.Contains(Functions, f.Function) {
			return bad("feature %s: unknown function %q: use one of %s", f.Name, f.Function, strings.Join(Functions, ", "))
		}
		if f.Function != "count" && strings.TrimSpace(f.Column) == "" {
			return bad("feature %s: %s needs a column (the expression to aggregate)", f.Name, f.Function)
		}
		if f.Window == "" {
			if f.Function != "last" {
				return bad("feature %s: window is missing (e.g. window: 1h); only last may omit it", f.Name)
			}
			continue
		}
		w, err := ParseDuration(f.Window)
		if err != nil {
			return bad("feature %s: window: %v", f.Name, err)
		}
		if w < time.Second || w%time.Second != 0 {
			return bad("feature %s: window %s must be a whole number of seconds, at least 1s", f.Name, f.Window)
		}
		if w > MaxWindow {
			return bad("feature %s: window %s is longer than the longest supported, %s", f.Name, f.Window, FormatDuration(MaxWindow))
		}
	}
	if s.TTL != "" {
		if _, err := ParseDuration(s.TTL); err != nil {
			return bad("ttl: %v", err)
		}
	}
	return nil
}

// MaxWindow is the longest window a feature may have.
const MaxWindow = 400 * 24 * time.Hour

// ParseDuration reads a duration with units d, h, m, s (7d, 1h30m).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var total time.Duration
	rest := s
	if i := strings.IndexByte(rest, 'd'); i > 0 {
		var n int64
		if _, err := fmt.Sscanf(rest[:i], "%d", &n); err != nil || fmt.Sprint(n) != rest[:i] || n <= 0 {
			return 0, fmt.Errorf("duration %q: use a number with d, h, m or s, e.g. 7d or 36h", s)
		}
		total = time.Duration(n) * 24 * time.Hour
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("duration %q: use a number with d, h, m or s, e.g. 7d or 36h", s)
		}
		total += d
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return total, nil
}

// FormatDuration writes d with a day unit where it helps (30d, 1h).
func FormatDuration(d time.Duration) string {
	day := 24 * time.Hour
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	s = strings.TrimSuffix(s, "0m")
	if s == "" {
		return "0s"
	}
	return s
}

// PipelineName is the name of the pipeline that writes the feature log.
func (s Spec) PipelineName() string { return s.Name + "_pipeline" }

// SQL returns the pipeline that writes the feature log: a streaming table
// with one row per source event, holding the entity keys, the event time
// and each feature's input (NULL where the feature's filter rejects the
// event). The spec must be valid.
func (s Spec) SQL() string {
	var b strings.Builder
	q := func(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }
	fmt.Fprintf(&b, "-- The feature log of the windowed features %s, generated from its spec.\n", s.Name)
	fmt.Fprintf(&b, "CREATE OR REFRESH STREAMING TABLE %s\n", s.Name)
	fmt.Fprintf(&b, "COMMENT %s\n", q("windowed features: one row per event of "+s.Source))
	props := []string{q(PropDef) + " = " + q(s.Def().Encode())}
	if s.Online {
		props = append(props, q("online")+" = "+q("true"))
	}
	if s.TTL != "" {
		props = append(props, q("sluice.ttl")+" = "+q(s.TTL))
	}
	fmt.Fprintf(&b, "TBLPROPERTIES (%s)\nAS SELECT\n", strings.Join(props, ", "))
	var items, notNull []string
	for _, k := range s.Entity {
		items = append(items, fmt.Sprintf("  (%s) AS %s", k.Expr, k.Name))
		notNull = append(notNull, fmt.Sprintf("(%s) IS NOT NULL", k.Expr))
	}
	items = append(items, fmt.Sprintf("  CAST(%s AS TIMESTAMP) AS %s", s.Timestamp, s.TimestampColumn))
	notNull = append(notNull, fmt.Sprintf("(%s) IS NOT NULL", s.Timestamp))
	for _, f := range s.Features {
		in := "CAST(1 AS BIGINT)"
		if f.Function != "count" || f.Column != "" {
			in = "(" + f.Column + ")"
			if f.Function == "count" {
				in = fmt.Sprintf("CASE WHEN (%s) IS NOT NULL THEN CAST(1 AS BIGINT) END", f.Column)
			}
		}
		if f.Filter != "" {
			in = fmt.Sprintf("CASE WHEN (%s) THEN %s END", f.Filter, in)
		}
		items = append(items, fmt.Sprintf("  %s AS %s", in, f.Name))
	}
	b.WriteString(strings.Join(items, ",\n"))
	fmt.Fprintf(&b, "\nFROM STREAM(%s)\nWHERE %s\n", s.Source, strings.Join(notNull, " AND "))
	return b.String()
}
