package table

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"modernc.org/sqlite"
)

// lateCancelDriver is modernc's SQLite driver, except that, while armed,
// the catalog's metadata swap lands and is then reported as cancelled:
// what modernc's driver does when the context ends while the statement
// runs (it reports ctx.Err() whatever the statement did).
type lateCancelDriver struct {
	inner *sqlite.Driver
	armed *atomic.Bool
}

func (d lateCancelDriver) Open(name string) (driver.Conn, error) {
	c, err := d.inner.Open(name)
	if err != nil {
		return nil, err
	}
	return lateCancelConn{c.(sqliteConn), d.armed}, nil
}

type sqliteConn interface {
	driver.Conn
	driver.ExecerContext
	driver.QueryerContext
	driver.ConnBeginTx
}

type lateCancelConn struct {
	sqliteConn
	armed *atomic.Bool
}

func (c lateCancelConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	r, err := c.sqliteConn.ExecContext(ctx, q, args)
	if err == nil && strings.Contains(q, "UPDATE iceberg_tables SET metadata_location") && c.armed.Load() {
		return nil, context.Canceled
	}
	return r, err
}

var lateCancelArmed atomic.Bool

func init() {
	sql.Register("sqlite-late-cancel", lateCancelDriver{inner: &sqlite.Driver{}, armed: &lateCancelArmed})
}

// TestCommitSwapReportedCancelled checks a commit whose metadata swap
// landed but was reported as cancelled: the commit counts as done, and
// the metadata file the catalog now names is kept. Removing it, as a
// failed swap's file is, left the table pointing at a missing file (seen
// in TestUpDemo, a pipeline stopping mid-commit).
func TestCommitSwapReportedCancelled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sql.Open("sqlite-late-cancel", sqliteDSN(filepath.Join(dir, "meta.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := Open(ctx, Options{DB: db, Warehouse: filepath.Join(dir, "warehouse")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	name := mustName(t, "main.demo.swap")
	tbl, err := store.Create(ctx, name, eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lateCancelArmed.Store(true)
	appendErr := tbl.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, `[{"id":1}]`)}, map[string]string{"sluice.offsets": "1"})
	lateCancelArmed.Store(false)
	if appendErr != nil && !errors.Is(appendErr, context.Canceled) {
		t.Fatalf("append: %v", appendErr)
	}
	// Whatever the writer was told, the table must load, from another
	// store that has cached nothing, with the row.
	other, err := Open(ctx, Options{DB: db, Warehouse: filepath.Join(dir, "warehouse")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	fresh, err := other.Load(ctx, name)
	if err != nil {
		t.Fatalf("loading the table after the swap: %v", err)
	}
	if n, err := fresh.Count(ctx); err != nil || n != 1 {
		t.Fatalf("rows %d (%v), want the appended row", n, err)
	}
	if appendErr != nil {
		t.Errorf("the append landed but reported %v", appendErr)
	}
}
