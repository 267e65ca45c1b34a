package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/stream"
)

// checkBackfill refuses, at create time, a backfill configuration that
// could not be merged: a source that does not exist or whose columns do
// not match the stream's (key and value as the schemas give them,
// stream_record_timestamp a UTC timestamp, kafka_* optional, nothing else),
// and deduplication columns that are not in the ingestion table or not in
// the source. Errors are ErrInvalid and name the field and the column.
func (m *Manager) checkBackfill(ctx context.Context, spec *stream.Spec, dst *arrow.Schema) error {
	in := spec.Ingestion
	if in.BackfillSource == nil {
		return nil
	}
	field := func(i int) string { return fmt.Sprintf("ingestion.deduplication_columns[%d]", i) }
	for i, c := range in.DeduplicationColumns {
		if err := checkPath(dst, c); err != nil {
			return fieldErr(ErrInvalid, field(i), "%s is not a column of the ingestion table: %v", c, err)
		}
	}
	src, err := openSource(ctx, m.store, in.BackfillSource, dst)
	if err != nil {
		if fe := (*stream.FieldError)(nil); errors.As(err, &fe) {
			return mark(ErrInvalid, err)
		}
		return fmt.Errorf("reading the backfill source: %w", err)
	}
	for i, c := range in.DeduplicationColumns {
		for _, sc := range src.schemas {
			if err := checkPath(sc, c); err != nil {
				return fieldErr(ErrInvalid, field(i), "%s is not in the backfill source (%s): %v; deduplicate on columns both sides have", c, src.label, err)
			}
		}
	}
	return nil
}

// checkPath checks that the dot path names a column or nested field of sc.
func checkPath(sc *arrow.Schema, path string) error {
	parts := strings.Split(path, ".")
	idx := sc.FieldIndices(parts[0])
	if len(idx) != 1 {
		return fmt.Errorf("no column %s", parts[0])
	}
	t := sc.Field(idx[0]).Type
	for i, name := range parts[1:] {
		st, ok := t.(*arrow.StructType)
		if !ok {
			return fmt.Errorf("%s is %s, not a struct with fields", strings.Join(parts[:i+1], "."), t)
		}
		fi, ok := st.FieldIdx(name)
		if !ok {
			names := make([]string, st.NumFields())
			for j, f := range st.Fields() {
				names[j] = f.Name
			}
			return fmt.Errorf("%s has no field %s (it has %s)", strings.Join(parts[:i+1], "."), name, strings.Join(names, ", "))
		}
		t = st.Field(fi).Type
	}
	return nil
}
