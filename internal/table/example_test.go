package table_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// Example shows a writer committing micro-batches with their source
// offsets, and what a stale writer sees.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "sluice-table-example")
	defer os.RemoveAll(dir)

	db, err := table.OpenSQLite(filepath.Join(dir, "meta.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	store, err := table.Open(ctx, table.Options{DB: db, Warehouse: filepath.Join(dir, "warehouse")}, nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	name, _ := ident.Parse("main.demo.orders")
	writer, err := store.Create(ctx, name, sc, table.CreateOptions{})
	if err != nil {
		panic(err)
	}
	zombie, _ := store.Load(ctx, name) // e.g. an instance that lost its partitions

	rec, _, _ := array.RecordFromJSON(memory.DefaultAllocator, writer.ArrowSchema(), strings.NewReader(`[{"id":1},{"id":2}]`))
	defer rec.Release()
	if err := writer.Append(ctx, []arrow.RecordBatch{rec}, map[string]string{"sluice.offsets": "0:2"}); err != nil {
		panic(err)
	}

	err = zombie.Append(ctx, []arrow.RecordBatch{rec}, map[string]string{"sluice.offsets": "0:2"})
	fmt.Println("zombie conflict:", errors.Is(err, table.ErrConflict))
	fmt.Println("committed offsets:", zombie.SnapshotProperties()["sluice.offsets"])
	n, _ := zombie.Count(ctx)
	fmt.Println("rows:", n)
	// Output:
	// zombie conflict: true
	// committed offsets: 0:2
	// rows: 2
}
