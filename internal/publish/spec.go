package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/internal/expr"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// PropWriter marks a feature table created by `sluice feature-table create`
// (value "api"): only such tables take writes through the API; tables a
// pipeline declares are written by their pipeline.
const PropWriter = "sluice.writer"

// ErrInvalidSpec is wrapped by every error a bad feature-table spec causes.
var ErrInvalidSpec = errors.New("invalid feature table spec")

// TableSpec is a plain feature table's definition, as Databricks'
// create_table(name, primary_keys, timestamp_keys, schema) takes it.
type TableSpec struct {
	Name        string   `yaml:"name" json:"name"`
	PrimaryKeys []string `yaml:"primary_keys" json:"primary_keys"`
	// TimestampKey is the time-series key: part of the primary key, a
	// timestamp or date column. Added to the primary key if missing.
	TimestampKey string `yaml:"timestamp_key,omitempty" json:"timestamp_key,omitempty"`
	// Schema is the columns in SQL: "user_id STRING, ts TIMESTAMP, revenue DOUBLE".
	Schema      string `yaml:"schema" json:"schema"`
	TTL         string `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	Online      bool   `yaml:"online,omitempty" json:"online,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// ParseTableSpec reads a YAML (or JSON) spec strictly and validates it.
func ParseTableSpec(b []byte) (TableSpec, *arrow.Schema, error) {
	var s TableSpec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return s, nil, fmt.Errorf("%w: parsing the spec: %w", ErrInvalidSpec, err)
	}
	sc, err := s.Validate()
	return s, sc, err
}

var simpleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the spec and returns the table's schema.
func (s *TableSpec) Validate() (*arrow.Schema, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, args...))
	}
	if _, err := ident.Parse(s.Name); err != nil {
		return nil, bad("name %q: %v (give the three-part name, e.g. main.features.user_profile)", s.Name, err)
	}
	if strings.TrimSpace(s.Schema) == "" {
		return nil, bad("schema is missing: list the columns in SQL, e.g. schema: \"user_id STRING, ts TIMESTAMP, revenue DOUBLE\"")
	}
	t, err := expr.ParseSchema(s.Schema)
	if err != nil {
		return nil, bad("schema: %v", err)
	}
	st, ok := t.(*arrow.StructType)
	if !ok || st.NumFields() == 0 {
		return nil, bad("schema %q: list the columns, e.g. \"user_id STRING, revenue DOUBLE\"", s.Schema)
	}
	fields := make([]arrow.Field, st.NumFields())
	for i := range fields {
		fields[i] = st.Field(i)
		fields[i].Nullable = true
	}
	sc := arrow.NewSchema(fields, nil)
	if len(s.PrimaryKeys) == 0 {
		return nil, bad("primary_keys is missing: name the entity key columns, e.g. primary_keys: [user_id]")
	}
	if s.TimestampKey != "" && !slices.Contains(s.PrimaryKeys, s.TimestampKey) {
		s.PrimaryKeys = append(s.PrimaryKeys, s.TimestampKey)
	}
	for _, k := range s.PrimaryKeys {
		if !simpleName.MatchString(k) || len(sc.FieldIndices(k)) == 0 {
			return nil, bad("primary key %q is not a column of the schema (%s)", k, s.Schema)
		}
	}
	if s.TimestampKey != "" {
		switch sc.Field(sc.FieldIndices(s.TimestampKey)[0]).Type.ID() {
		case arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64:
		default:
			return nil, bad("timestamp_key %s must be a TIMESTAMP or DATE column", s.TimestampKey)
		}
		if len(s.PrimaryKeys) == 1 {
			return nil, bad("primary_keys hold only the timestamp key %s: add the entity key columns", s.TimestampKey)
		}
	}
	if len(s.PrimaryKeys) == sc.NumFields() {
		return nil, bad("every column is a key: add feature columns to the schema")
	}
	if s.TTL != "" {
		if _, err := ParseDuration(s.TTL); err != nil {
			return nil, bad("ttl: %v", err)
		}
		if s.TimestampKey == "" {
			return nil, fmt.Errorf("%w: %s: %w: set timestamp_key to a TIMESTAMP or DATE column, or drop ttl", ErrInvalidSpec, s.Name, ErrTTLWithoutTimeKey)
		}
	}
	return sc, nil
}

// Create creates the spec's empty table; sc is what Validate returned.
func (s TableSpec) Create(ctx context.Context, store *table.Store, sc *arrow.Schema) (*table.Table, error) {
	name, err := ident.Parse(s.Name)
	if err != nil {
		return nil, err
	}
	props := map[string]string{PropPrimaryKey: strings.Join(s.PrimaryKeys, ","), PropWriter: "api"}
	if s.TimestampKey != "" {
		props[PropTimeKey] = s.TimestampKey
	}
	if s.TTL != "" {
		props[PropTTL] = s.TTL
	}
	if s.Online {
		props[PropOnline] = "true"
	}
	if s.Description != "" {
		props["comment"] = s.Description
	}
	return store.Create(ctx, name, sc, table.CreateOptions{Properties: props})
}
