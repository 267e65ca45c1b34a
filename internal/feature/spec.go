package feature

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/internal/ident"
)

// ErrInvalid is wrapped by every error that a bad spec, a missing column or
// a type mismatch between labels and features causes: the caller's fault
// (HTTP 400).
var ErrInvalid = errors.New("feature: invalid training set")

// ErrNotFound is returned when a training set or model does not exist.
var ErrNotFound = errors.New("feature: not found")

// ErrChanged is returned by [Service.Recreate] when an input it recorded is
// no longer what it was: a labels file changed, or a table snapshot was
// expired.
var ErrChanged = errors.New("feature: an input of the training set changed")

// Spec is a training set's definition, as YAML (docs/features.md) or JSON.
type Spec struct {
	// Labels is a Parquet file, a glob of Parquet files (sorted by name),
	// or a three-part table name. A value with a '/' or ending in
	// ".parquet" is a path; a relative path is resolved by the server
	// against its working directory (the CLI makes it absolute).
	Labels string `yaml:"labels" json:"labels"`
	// TimestampColumn is the labels' point-in-time column (a timestamp or
	// date column).
	TimestampColumn string `yaml:"timestamp_column" json:"timestamp_column"`
	// Label is the label column. It is kept as is; it must exist.
	Label string `yaml:"label,omitempty" json:"label,omitempty"`
	// ExcludeColumns are label columns left out of the result.
	ExcludeColumns []string `yaml:"exclude_columns,omitempty" json:"exclude_columns,omitempty"`
	Lookups        []Lookup `yaml:"lookups" json:"lookups"`
}

// Lookup takes features from one feature table.
type Lookup struct {
	// Table is the feature table's three-part name.
	Table string `yaml:"table" json:"table"`
	// LookupKey are label columns matched, in order, to the table's
	// primary key without its timestamp key (table property
	// sluice.primary_key), or, for a table without that property, to
	// the table's columns of the same names. YAML accepts a string or a
	// list.
	LookupKey Strings `yaml:"lookup_key" json:"lookup_key"`
	// Features are the table's columns to take; empty takes every column
	// that is neither a key nor the timestamp key.
	Features []string `yaml:"features,omitempty" json:"features,omitempty"`
	// Rename gives a feature another output name: {revenue_1h: rev}.
	Rename map[string]string `yaml:"rename,omitempty" json:"rename,omitempty"`
	// TimestampKey overrides the table's timestamp key (table property
	// sluice.timeseries_key). "-" joins on keys alone, ignoring it.
	TimestampKey string `yaml:"timestamp_key,omitempty" json:"timestamp_key,omitempty"`
}

// Strings is a list of strings that YAML and JSON also accept as a single
// string.
type Strings []string

// UnmarshalYAML accepts a scalar or a sequence.
func (s *Strings) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = Strings{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// UnmarshalJSON accepts a string or an array.
func (s *Strings) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := yamlJSON(b, &v); err != nil {
			return err
		}
		*s = Strings{v}
		return nil
	}
	var l []string
	if err := yamlJSON(b, &l); err != nil {
		return err
	}
	*s = l
	return nil
}

// yamlJSON decodes JSON b into v (JSON is YAML; this avoids a recursive
// UnmarshalJSON).
func yamlJSON(b []byte, v any) error { return yaml.Unmarshal(b, v) }

// ParseSpec reads a YAML (or JSON) spec strictly: unknown fields are
// errors. It validates the spec's shape; columns and tables are checked
// when the training set is planned.
func ParseSpec(b []byte) (Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%w: parsing the spec: %w", ErrInvalid, err)
	}
	return s, s.Validate()
}

// LabelsIsTable reports whether Labels names a table rather than files.
func (s Spec) LabelsIsTable() bool {
	l := s.Labels
	if strings.ContainsAny(l, `/\*?[`) || strings.HasSuffix(strings.ToLower(l), ".parquet") {
		return false
	}
	_, err := ident.Parse(l)
	return err == nil
}

// Validate checks the spec's shape.
func (s Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if s.Labels == "" {
		return bad("labels is required: a Parquet file or glob, or a table name")
	}
	if s.TimestampColumn == "" {
		return bad("timestamp_column is required: the labels' point-in-time column")
	}
	if len(s.Lookups) == 0 {
		return bad("lookups is empty: name at least one feature table")
	}
	for i, l := range s.Lookups {
		if _, err := ident.Parse(l.Table); err != nil {
			return bad("lookups[%d].table: %v", i, err)
		}
		if len(l.LookupKey) == 0 {
			return bad("lookups[%d] (%s): lookup_key is required", i, l.Table)
		}
		for _, k := range l.LookupKey {
			if k == "" {
				return bad("lookups[%d] (%s): lookup_key has an empty name", i, l.Table)
			}
		}
		seen := map[string]bool{}
		for _, f := range l.Features {
			if seen[f] {
				return bad("lookups[%d] (%s): feature %s is listed twice", i, l.Table, f)
			}
			seen[f] = true
		}
		for from, to := range l.Rename {
			if !seen[from] && len(l.Features) > 0 {
				return bad("lookups[%d] (%s): rename of %s, which is not in features", i, l.Table, from)
			}
			if !columnName.MatchString(to) {
				return bad("lookups[%d] (%s): rename %s to %q: not a column name", i, l.Table, from, to)
			}
		}
	}
	return nil
}

var columnName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// nameRE is what training set and model names look like: a three-part
// name or any word of letters, digits, '_', '-', '.'.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$`)

// CheckName validates a training set or model name.
func CheckName(what, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %s name %q: use letters, digits, '_', '-' and '.', e.g. main.ml.churn_train", ErrInvalid, what, name)
	}
	return nil
}

// labelFiles expands the spec's labels path or glob.
func labelFiles(pattern string) ([]string, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: labels %q: %w", ErrInvalid, pattern, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: labels %q: no such file", ErrInvalid, pattern)
	}
	return files, nil // Glob sorts
}
