package stream

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/internal/ident"
)

// Defaults of the backfill settings, applied when a backfill source is given.
const (
	DefaultBackfillOverlap  = time.Hour
	DefaultBackfillDeadline = 48 * time.Hour
)

// BackfillSource is the seed's StreamBackfillSource: a table
// ("catalog.schema.table", written as a plain string) or Parquet files
// ({parquet: "/abs/path/*.parquet"}). Exactly one of the fields is set.
type BackfillSource struct {
	// Table is the three-part name of an Iceberg table in this sluice.
	Table string `yaml:"table,omitempty" json:"table,omitempty"`
	// Parquet is an absolute path or glob (path/filepath.Match syntax) of
	// Parquet files, read again at every overlap check.
	Parquet string `yaml:"parquet,omitempty" json:"parquet,omitempty"`
}

// String describes the source as a user wrote it.
func (b *BackfillSource) String() string {
	if b.Parquet != "" {
		return "parquet " + b.Parquet
	}
	return "table " + b.Table
}

// UnmarshalYAML implements yaml.Unmarshaler: a string names a table; a
// mapping gives exactly one of table or parquet.
func (b *BackfillSource) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*b = BackfillSource{Table: n.Value}
		return nil
	case yaml.MappingNode:
		*b = BackfillSource{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: backfill_source.%s must be a string", v.Line, k.Value)
			}
			switch k.Value {
			case "table":
				b.Table = v.Value
			case "parquet":
				b.Parquet = v.Value
			default:
				return fmt.Errorf("line %d: field %s not found in backfill_source (use table or parquet)", k.Line, k.Value)
			}
		}
		return nil
	}
	return fmt.Errorf("line %d: backfill_source must be a table name or {parquet: \"path/glob\"}", n.Line)
}

// UnmarshalJSON implements json.Unmarshaler with the same forms.
func (b *BackfillSource) UnmarshalJSON(raw []byte) error {
	var name string
	if err := json.Unmarshal(raw, &name); err == nil {
		*b = BackfillSource{Table: name}
		return nil
	}
	var m struct {
		Table   string `json:"table"`
		Parquet string `json:"parquet"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("backfill_source must be a table name or {\"parquet\": \"path/glob\"}: %w", err)
	}
	*b = BackfillSource{Table: m.Table, Parquet: m.Parquet}
	return nil
}

// MarshalJSON implements json.Marshaler: a table as its name, Parquet files
// as {"parquet": GLOB}.
func (b BackfillSource) MarshalJSON() ([]byte, error) {
	if b.Parquet != "" || b.Table == "" {
		return json.Marshal(map[string]string{"parquet": b.Parquet})
	}
	return json.Marshal(b.Table)
}

// MarshalYAML implements yaml.Marshaler.
func (b BackfillSource) MarshalYAML() (any, error) {
	if b.Parquet != "" || b.Table == "" {
		return map[string]string{"parquet": b.Parquet}, nil
	}
	return b.Table, nil
}

// TableName returns the parsed backfill table name; valid after Validate
// when Table is set.
func (b *BackfillSource) TableName() ident.Name { n, _ := ident.Parse(b.Table); return n }

// Top-level columns a deduplication path may start with: the ingestion
// table's columns except record_source.
var dedupRoots = []string{"key", "value", "stream_record_timestamp", "kafka_topic", "kafka_partition", "kafka_offset"}

// DefaultDeduplicationColumns is the key used without deduplication_columns,
// as the seed says.
var DefaultDeduplicationColumns = []string{"key", "value", "stream_record_timestamp"}

// DedupColumns returns the deduplication columns in effect.
func (in *Ingestion) DedupColumns() []string {
	if len(in.DeduplicationColumns) == 0 {
		return slices.Clone(DefaultDeduplicationColumns)
	}
	return slices.Clone(in.DeduplicationColumns)
}

func (in *Ingestion) ensureBackfillDefaults() {
	if in.BackfillSource == nil {
		return
	}
	if in.BackfillOverlap == 0 {
		in.BackfillOverlap = Duration(DefaultBackfillOverlap)
	}
	if in.BackfillDeadline == 0 {
		in.BackfillDeadline = Duration(DefaultBackfillDeadline)
	}
}

func (in *Ingestion) validateBackfill() error {
	b := in.BackfillSource
	if b == nil {
		for field, set := range map[string]bool{
			"ingestion.deduplication_columns": len(in.DeduplicationColumns) > 0,
			"ingestion.backfill_overlap":      in.BackfillOverlap != 0,
			"ingestion.backfill_deadline":     in.BackfillDeadline != 0,
		} {
			if set {
				return fieldErr(field, "applies to the backfill merge: give ingestion.backfill_source too")
			}
		}
		return nil
	}
	switch {
	case b.Table != "" && b.Parquet != "":
		return fieldErr("ingestion.backfill_source", "give either a table name or {parquet: \"path/glob\"}, not both")
	case b.Table == "" && b.Parquet == "":
		return fieldErr("ingestion.backfill_source", "is empty: give a table name or {parquet: \"path/glob\"}")
	case b.Table != "":
		n, err := ident.Parse(b.Table)
		if err != nil {
			return fieldErr("ingestion.backfill_source", "%v", err)
		}
		if n.String() == in.Destination {
			return fieldErr("ingestion.backfill_source", "is the ingestion table itself")
		}
	default:
		if !filepath.IsAbs(b.Parquet) {
			return fieldErr("ingestion.backfill_source.parquet", "must be an absolute path or glob, got %q", b.Parquet)
		}
		if _, err := filepath.Match(b.Parquet, ""); err != nil {
			return fieldErr("ingestion.backfill_source.parquet", "is not a valid glob: %v", err)
		}
	}
	seen := map[string]bool{}
	for i, c := range in.DeduplicationColumns {
		field := fmt.Sprintf("ingestion.deduplication_columns[%d]", i)
		parts := strings.Split(c, ".")
		if slices.Contains(parts, "") {
			return fieldErr(field, "%q is not a dot path such as value.transaction_id", c)
		}
		if !slices.Contains(dedupRoots, parts[0]) {
			return fieldErr(field, "%q must start with one of %s", c, strings.Join(dedupRoots, ", "))
		}
		if len(parts) > 1 && parts[0] != "key" && parts[0] != "value" {
			return fieldErr(field, "%q: only key and value have nested fields", c)
		}
		if seen[c] {
			return fieldErr(field, "%q is listed twice", c)
		}
		seen[c] = true
	}
	if in.BackfillOverlap < 0 || in.BackfillOverlap.D() > 365*24*time.Hour {
		return fieldErr("ingestion.backfill_overlap", "must be between 0 and 365d, got %s", in.BackfillOverlap)
	}
	if in.BackfillDeadline < 0 || in.BackfillDeadline.D() > 365*24*time.Hour {
		return fieldErr("ingestion.backfill_deadline", "must be between 0 and 365d, got %s", in.BackfillDeadline)
	}
	return nil
}
