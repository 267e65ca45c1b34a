package feature

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sluice-dev/sluice/internal/feature/window"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// Table properties that make a table a feature table (a pipeline's
// PRIMARY KEY (…, ts TIMESERIES) clause sets the first two).
const (
	PropPrimaryKey = "sluice.primary_key"    // comma-separated key columns, the timestamp key included
	PropTimeKey    = "sluice.timeseries_key" // the timestamp key column
	PropTTL        = "sluice.ttl"            // a feature row older than this at the label time does not match ("7d")
)

// Plan is a training set resolved against the catalog at one moment:
// exactly which label files or snapshot, which table snapshots, keys and
// columns it reads, and the result's columns. Running the same Plan again
// yields the same rows in the same order ([Service.Recreate]); it is what
// the catalog records, as JSON.
type Plan struct {
	Labels          LabelsPlan `json:"labels"`
	TimestampColumn string     `json:"timestamp_column"`
	Label           string     `json:"label,omitempty"`
	// LabelColumns are the label columns the result keeps, in order;
	// the features follow them.
	LabelColumns []string     `json:"label_columns"`
	Lookups      []LookupPlan `json:"lookups"`
	// Rows is the number of label rows, which is the number of result rows.
	Rows int64 `json:"rows"`
	// Schema is the result's columns (informative).
	Schema []Column `json:"schema"`
}

// Column is one result column.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// LabelsPlan says where the labels come from: files (with their sizes and
// SHA-256 digests, checked again on recreate) or a table snapshot.
type LabelsPlan struct {
	Table    string      `json:"table,omitempty"`
	Snapshot int64       `json:"snapshot_id,omitempty"`
	Files    []LabelFile `json:"files,omitempty"`
}

// LabelFile is one labels file as it was when the training set was made.
type LabelFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// LookupPlan is one lookup resolved: the table snapshot read and how.
type LookupPlan struct {
	Table    string `json:"table"`
	Snapshot int64  `json:"snapshot_id"` // 0: the table had no snapshot (no rows)
	// LookupKey are the label columns matched, in order, to TableKey.
	LookupKey []string `json:"lookup_key"`
	TableKey  []string `json:"table_key"`
	// TimestampKey is the table's timestamp column; "" joins on keys alone.
	TimestampKey string `json:"timestamp_key,omitempty"`
	// TTL, when set, is the oldest a feature row may be at the label time.
	TTL string `json:"ttl,omitempty"`
	// Features are the table columns read; Columns their result names.
	Features []string `json:"features"`
	Columns  []string `json:"columns"`
	// Windowed says the table is a windowed feature table: its features
	// are windows over its feature log ending at the label time.
	Windowed bool `json:"windowed,omitempty"`
}

func (l LookupPlan) ttl() time.Duration {
	d, _ := ParseDuration(l.TTL)
	return d
}

// ParseDuration reads a duration with the units d, h, m, s, ms, us, ns and
// their combinations ("7d", "36h", "1d12h", "90m"). Days are 24 hours.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	rest := in
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i > 0 && i < len(rest) && rest[i] == 'd' {
			n, err := strconv.ParseInt(rest[:i], 10, 64)
			if err != nil || n > 1e6 {
				return 0, fmt.Errorf("duration %q: too many days", s)
			}
			total += time.Duration(n) * 24 * time.Hour
			rest = rest[i+1:]
			continue
		}
		// The rest has no more days: Go's syntax.
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("duration %q: use a number with d, h, m or s, e.g. 7d, 36h or 1d12h", s)
		}
		total += d
		break
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q: must be positive", s)
	}
	return total, nil
}

// Plan resolves spec against the current state of the tables and label
// files: it fixes the snapshots read, checks every column and key type,
// names the result's columns and digests the label files. It reads no
// feature data.
func (s *Service) Plan(ctx context.Context, spec Spec) (Plan, error) {
	if err := spec.Validate(); err != nil {
		return Plan{}, err
	}
	p := Plan{TimestampColumn: spec.TimestampColumn, Label: spec.Label}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}

	// Labels.
	var lsc *arrow.Schema
	if spec.LabelsIsTable() {
		n, _ := ident.Parse(spec.Labels)
		t, err := s.tables.Load(ctx, n)
		if err != nil {
			return p, fmt.Errorf("labels: %w", err)
		}
		p.Labels = LabelsPlan{Table: n.String(), Snapshot: t.SnapshotID()}
		lsc = t.ArrowSchema()
		if p.Rows, err = t.Count(ctx); err != nil {
			return p, err
		}
	} else {
		pattern := spec.Labels
		if !filepath.IsAbs(pattern) {
			abs, err := filepath.Abs(pattern)
			if err != nil {
				return p, bad("labels %q: %v", pattern, err)
			}
			pattern = abs
		}
		files, err := labelFiles(pattern)
		if err != nil {
			return p, err
		}
		for _, f := range files {
			lf, sc, rows, err := describeLabelFile(f)
			if err != nil {
				return p, err
			}
			if lsc == nil {
				lsc = sc
			} else if !lsc.Equal(sc) {
				return p, bad("labels file %s has the columns (%s), but %s has (%s): every labels file needs the same columns",
					f, describe(sc), p.Labels.Files[0].Path, describe(lsc))
			}
			p.Labels.Files = append(p.Labels.Files, lf)
			p.Rows += rows
		}
	}
	labelType := func(col, what string) (arrow.DataType, error) {
		idx := lsc.FieldIndices(col)
		if len(idx) == 0 {
			return nil, bad("%s %q is not a column of the labels (%s)", what, col, describe(lsc))
		}
		return lsc.Field(idx[0]).Type, nil
	}
	tt, err := labelType(spec.TimestampColumn, "timestamp_column")
	if err != nil {
		return p, err
	}
	if err := checkTimeColumn("timestamp_column "+spec.TimestampColumn, tt); err != nil {
		return p, err
	}
	if spec.Label != "" {
		if _, err := labelType(spec.Label, "label"); err != nil {
			return p, err
		}
		if slices.Contains(spec.ExcludeColumns, spec.Label) {
			return p, bad("label %s is also in exclude_columns", spec.Label)
		}
	}
	for _, c := range spec.ExcludeColumns {
		if _, err := labelType(c, "exclude_columns entry"); err != nil {
			return p, err
		}
	}
	for _, f := range lsc.Fields() {
		if !slices.Contains(spec.ExcludeColumns, f.Name) {
			p.LabelColumns = append(p.LabelColumns, f.Name)
			p.Schema = append(p.Schema, Column{Name: f.Name, Type: f.Type.String()})
		}
	}

	// Lookups.
	var featureTypes [][]arrow.DataType
	for i, l := range spec.Lookups {
		name, _ := ident.Parse(l.Table)
		t, err := s.tables.Load(ctx, name)
		if err != nil {
			return p, fmt.Errorf("lookups[%d]: %w", i, err)
		}
		lp, types, err := planLookup(t, l, labelType)
		if err != nil {
			return p, fmt.Errorf("lookups[%d] (%s): %w", i, l.Table, err)
		}
		p.Lookups = append(p.Lookups, lp)
		featureTypes = append(featureTypes, types)
	}

	// Result names: a feature clashing with a label column or with a
	// feature of another lookup is prefixed with its table's name.
	count := map[string]int{}
	for _, c := range p.LabelColumns {
		count[c] += 1 << 20 // label columns never move
	}
	for _, lp := range p.Lookups {
		for _, c := range lp.Columns {
			count[c]++
		}
	}
	used := map[string]bool{}
	for _, c := range p.LabelColumns {
		used[c] = true
	}
	for i := range p.Lookups {
		lp := &p.Lookups[i]
		obj := lp.Table[strings.LastIndexByte(lp.Table, '.')+1:]
		for j, c := range lp.Columns {
			if count[c] > 1 {
				lp.Columns[j] = obj + "__" + c
			}
			if used[lp.Columns[j]] {
				return p, bad("lookups[%d] (%s): feature %s would be named %s, which another column has: rename it (rename: {%s: NEW_NAME})",
					i, lp.Table, lp.Features[j], lp.Columns[j], lp.Features[j])
			}
			used[lp.Columns[j]] = true
			p.Schema = append(p.Schema, Column{Name: lp.Columns[j], Type: featureTypes[i][j].String()})
		}
	}
	return p, nil
}

func planLookup(t *table.Table, l Lookup, labelType func(col, what string) (arrow.DataType, error)) (LookupPlan, []arrow.DataType, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	props := t.Properties()
	if v := props[window.PropDef]; v != "" {
		def, err := window.ParseDef(v)
		if err != nil {
			return LookupPlan{}, nil, fmt.Errorf("%s: %w", t.Name(), err)
		}
		return planWindowedLookup(t, def, l, labelType)
	}
	sc := t.ArrowSchema()
	lp := LookupPlan{Table: t.Name().String(), Snapshot: t.SnapshotID(), LookupKey: l.LookupKey, TimestampKey: props[PropTimeKey]}
	switch l.TimestampKey {
	case "":
	case "-":
		lp.TimestampKey = ""
	default:
		lp.TimestampKey = l.TimestampKey
	}
	colType := func(c string) (arrow.DataType, bool) {
		idx := sc.FieldIndices(c)
		if len(idx) == 0 {
			return nil, false
		}
		return sc.Field(idx[0]).Type, true
	}
	if pk := props[PropPrimaryKey]; pk != "" {
		for _, k := range strings.Split(pk, ",") {
			if k = strings.TrimSpace(k); k != "" && k != props[PropTimeKey] && k != lp.TimestampKey {
				lp.TableKey = append(lp.TableKey, k)
			}
		}
		if len(lp.TableKey) != len(l.LookupKey) {
			return lp, nil, bad("lookup_key has %d column(s) (%s) but the table's primary key has %d (%s)",
				len(l.LookupKey), strings.Join(l.LookupKey, ", "), len(lp.TableKey), strings.Join(lp.TableKey, ", "))
		}
	} else {
		lp.TableKey = slices.Clone([]string(l.LookupKey))
	}
	for i, k := range lp.TableKey {
		ft, ok := colType(k)
		if !ok {
			return lp, nil, bad("the table has no key column %s (columns: %s)", k, describe(sc))
		}
		lt, err := labelType(l.LookupKey[i], "lookup_key")
		if err != nil {
			return lp, nil, err
		}
		if classOf(ft) == classNone || classOf(ft) != classOf(lt) {
			return lp, nil, bad("lookup_key %s is %s in the labels but key %s is %s in the table", l.LookupKey[i], lt, k, ft)
		}
	}
	if lp.TimestampKey != "" {
		ft, ok := colType(lp.TimestampKey)
		if !ok {
			return lp, nil, bad("the table has no timestamp key column %s", lp.TimestampKey)
		}
		if err := checkTimeColumn("timestamp key "+lp.TimestampKey, ft); err != nil {
			return lp, nil, err
		}
		var err error
		if lp.TTL, err = tableTTL(props); err != nil {
			return lp, nil, err
		}
	}
	isKey := func(c string) bool { return slices.Contains(lp.TableKey, c) || c == lp.TimestampKey }
	lp.Features = slices.Clone(l.Features)
	if len(lp.Features) == 0 {
		for _, f := range sc.Fields() {
			if !isKey(f.Name) {
				lp.Features = append(lp.Features, f.Name)
			}
		}
	}
	var types []arrow.DataType
	for _, f := range lp.Features {
		ft, ok := colType(f)
		if !ok {
			return lp, nil, bad("the table has no column %s (columns: %s)", f, describe(sc))
		}
		if isKey(f) {
			return lp, nil, bad("%s is a key of the table, not a feature: the result has the label's %s already", f, f)
		}
		types = append(types, ft)
		name := f
		if r, ok := l.Rename[f]; ok {
			name = r
		}
		lp.Columns = append(lp.Columns, name)
	}
	return lp, types, nil
}

func describe(sc *arrow.Schema) string {
	var b strings.Builder
	for i, f := range sc.Fields() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Name)
		b.WriteByte(' ')
		b.WriteString(f.Type.String())
	}
	return b.String()
}

// describeLabelFile digests a labels file and reads its schema and row count.
func describeLabelFile(path string) (LabelFile, *arrow.Schema, int64, error) {
	lf := LabelFile{Path: path}
	f, err := os.Open(path)
	if err != nil {
		return lf, nil, 0, fmt.Errorf("%w: labels: %w", ErrInvalid, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return lf, nil, 0, fmt.Errorf("reading labels %s: %w", path, err)
	}
	lf.Size, lf.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return lf, nil, 0, fmt.Errorf("%w: labels %s is not a Parquet file: %w", ErrInvalid, path, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return lf, nil, 0, fmt.Errorf("reading labels %s: %w", path, err)
	}
	sc, err := fr.Schema()
	if err != nil {
		return lf, nil, 0, fmt.Errorf("reading labels %s: %w", path, err)
	}
	return lf, arrow.NewSchema(sc.Fields(), nil), pf.NumRows(), nil
}

// checkLabelFile reports whether a labels file is still what lf recorded.
func checkLabelFile(lf LabelFile) error {
	got, _, _, err := describeLabelFile(lf.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: labels file %s is gone", ErrChanged, lf.Path)
		}
		return err
	}
	if got.Size != lf.Size || got.SHA256 != lf.SHA256 {
		return fmt.Errorf("%w: labels file %s changed (sha256 %s, recorded %s)", ErrChanged, lf.Path, got.SHA256, lf.SHA256)
	}
	return nil
}

// tableTTL returns a feature table's TTL property (sluice.ttl, or ttl as
// TBLPROPERTIES ('ttl' = '7d') sets it), checked; "" for none.
func tableTTL(props map[string]string) (string, error) {
	ttl := props[PropTTL]
	if ttl == "" {
		ttl = props["ttl"]
	}
	if ttl != "" {
		if _, err := ParseDuration(ttl); err != nil {
			return "", fmt.Errorf("table property %s: %w", PropTTL, err)
		}
	}
	return ttl, nil
}
