package table

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/iceberg-go"

	"github.com/sluice-dev/sluice/internal/ident"
)

// SetProperties sets table properties of table name (keys not given are
// kept), in one metadata commit. A concurrent writer's commit makes it
// retry on the new state, as [Store.Optimize] does: properties do not
// depend on the data.
func (s *Store) SetProperties(ctx context.Context, name ident.Name, props map[string]string) error {
	var err error
	for attempt := 1; attempt <= maxOptimizeAttempts; attempt++ {
		var t *Table
		if t, err = s.Load(ctx, name); err != nil {
			return err
		}
		base := t.tbl.MetadataLocation()
		txn := t.tbl.NewTransaction()
		if err = txn.SetProperties(iceberg.Properties(props)); err != nil {
			return fmt.Errorf("table: setting properties of %s: %w", name, err)
		}
		if err = t.commit(ctx, txn, base, "set properties"); err == nil || !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return err
}
