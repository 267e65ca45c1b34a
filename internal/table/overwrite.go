package table

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
)

// Overwrite replaces every row of the table with recs, in one snapshot
// (operation "overwrite") whose summary carries props. It is what a
// materialized view's refresh and a streaming table's full refresh commit.
// recs follow the rules of [Table.Append]; zero records empty the table.
// Conflicts are reported as by [Table.Append], wrapping [ErrConflict].
func (t *Table) Overwrite(ctx context.Context, recs []arrow.RecordBatch, props map[string]string) error {
	sc := t.schema
	if len(recs) > 0 {
		sc = recs[0].Schema()
	}
	rdr, err := array.NewRecordReader(sc, recs)
	if err != nil {
		return fmt.Errorf("table: overwriting %s: %w", t.name, err)
	}
	defer rdr.Release()

	base := t.tbl.MetadataLocation()
	txn := t.tbl.NewTransaction()
	if t.tbl.CurrentSnapshot() == nil {
		// Nothing to delete: an append is the same and cheaper.
		err = txn.Append(ctx, rdr, iceberg.Properties(props))
	} else {
		err = txn.Overwrite(ctx, rdr, iceberg.Properties(props))
	}
	if err != nil {
		return t.failed(ctx, err, base, "overwrite")
	}
	return t.commit(ctx, txn, base, "overwrite")
}
