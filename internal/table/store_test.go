package table

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/ident"
)

func TestCreateLoadListDrop(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	names := []string{"main.demo.orders", "main.demo.clicks", "main.other.orders", "dev.demo.orders"}
	for _, s := range names {
		if _, err := e.store.Create(ctx, mustName(t, s), eventSchema, CreateOptions{}); err != nil {
			t.Fatalf("Create(%s): %v", s, err)
		}
	}

	list := map[string]struct {
		catalog, schema string
		want            []string
	}{
		"two tables":        {"main", "demo", []string{"main.demo.clicks", "main.demo.orders"}},
		"other schema":      {"main", "other", []string{"main.other.orders"}},
		"other catalog":     {"dev", "demo", []string{"dev.demo.orders"}},
		"missing namespace": {"main", "nope", nil},
	}
	for name, tc := range list {
		t.Run("list/"+name, func(t *testing.T) {
			got, err := e.store.List(ctx, tc.catalog, tc.schema)
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, n := range got {
				gs = append(gs, n.String())
			}
			if !slices.Equal(gs, tc.want) {
				t.Fatalf("List(%s.%s) = %v, want %v", tc.catalog, tc.schema, gs, tc.want)
			}
		})
	}

	t.Run("load", func(t *testing.T) {
		tbl, err := e.store.Load(ctx, mustName(t, "main.demo.orders"))
		if err != nil {
			t.Fatal(err)
		}
		if tbl.Name().String() != "main.demo.orders" || tbl.SnapshotID() != 0 || tbl.SnapshotProperties() != nil {
			t.Fatalf("loaded %s snapshot %d props %v", tbl.Name(), tbl.SnapshotID(), tbl.SnapshotProperties())
		}
		if want := e.store.Location(tbl.Name()); tbl.Location() != want {
			t.Fatalf("location %s, want %s", tbl.Location(), want)
		}
		if n, err := tbl.Count(ctx); err != nil || n != 0 {
			t.Fatalf("Count = %d, %v", n, err)
		}
		rdr, err := tbl.Scan(ctx, ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rows := rowsOf(t, rdr); len(rows) != 0 {
			t.Fatalf("empty table scanned %d rows", len(rows))
		}
	})

	t.Run("drop", func(t *testing.T) {
		n := mustName(t, "main.demo.clicks")
		tbl, err := e.store.Load(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		rec := recordFromJSON(t, eventSchema, `[{"id":1}]`)
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
			t.Fatal(err)
		}
		if err := e.store.Drop(ctx, n); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(tbl.Location()); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("table directory after drop: %v", err)
		}
		if _, err := e.store.Load(ctx, n); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Load after Drop: %v, want ErrNotFound", err)
		}
		if err := tbl.Refresh(ctx); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Refresh after Drop: %v, want ErrNotFound", err)
		}
		// The name is free again.
		if _, err := e.store.Create(ctx, n, eventSchema, CreateOptions{}); err != nil {
			t.Fatalf("re-Create after Drop: %v", err)
		}
	})
}

func TestStoreErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	existing := mustName(t, "main.demo.orders")
	if _, err := e.store.Create(ctx, existing, eventSchema, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		op   func() error
		want error // nil: any non-nil error
	}{
		"create existing": {func() error {
			_, err := e.store.Create(ctx, existing, eventSchema, CreateOptions{})
			return err
		}, ErrExists},
		"load missing table": {func() error {
			_, err := e.store.Load(ctx, mustName(t, "main.demo.nope"))
			return err
		}, ErrNotFound},
		"load missing namespace": {func() error {
			_, err := e.store.Load(ctx, mustName(t, "main.nope.orders"))
			return err
		}, ErrNotFound},
		"drop missing": {func() error { return e.store.Drop(ctx, mustName(t, "main.demo.nope")) }, ErrNotFound},
		"invalid name": {func() error {
			_, err := e.store.Create(ctx, ident.Name{Catalog: "main", Schema: "demo", Object: "a-b"}, eventSchema, CreateOptions{})
			return err
		}, ident.ErrInvalid},
		"unknown dictionary column": {func() error {
			_, err := e.store.Create(ctx, mustName(t, "main.demo.dict"), eventSchema, CreateOptions{DictionaryColumns: []string{"nope"}})
			return err
		}, nil},
		"dictionary path into a primitive": {func() error {
			_, err := e.store.Create(ctx, mustName(t, "main.demo.dict"), eventSchema, CreateOptions{DictionaryColumns: []string{"name.x"}})
			return err
		}, nil},
		"dictionary path, bad list part": {func() error {
			_, err := e.store.Create(ctx, mustName(t, "main.demo.dict"), eventSchema, CreateOptions{DictionaryColumns: []string{"tags.item"}})
			return err
		}, nil},
		"unsupported arrow type": {func() error {
			sc := arrow.NewSchema([]arrow.Field{{Name: "u", Type: arrow.FixedWidthTypes.Duration_s}}, nil)
			_, err := e.store.Create(ctx, mustName(t, "main.demo.uint"), sc, CreateOptions{})
			return err
		}, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.op()
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	db, err := OpenSQLite(t.TempDir() + "/m.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cases := map[string]struct {
		opts Options
		ok   bool
	}{
		"ok":            {Options{DB: db, Warehouse: "w"}, true},
		"postgres":      {Options{DB: db, Warehouse: "w", Dialect: "postgres"}, true},
		"no db":         {Options{Warehouse: "w"}, false},
		"no warehouse":  {Options{DB: db}, false},
		"other dialect": {Options{DB: db, Warehouse: "w", Dialect: "mysql"}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.opts.EnsureDefaults()
			if err := tc.opts.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestConcurrentStores checks the recommended SQLite DSN: two Stores (as two
// processes would) creating and committing at once never see "database is
// locked".
func TestConcurrentStores(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	stores := []*Store{e.store, e.open(t)}
	rec := recordFromJSON(t, eventSchema, `[{"id":1},{"id":2}]`)
	const tables, appends = 4, 8
	var wg sync.WaitGroup
	errs := make(chan error, tables)
	for i := range tables {
		wg.Go(func() {
			s := stores[i%len(stores)]
			n := ident.Name{Catalog: "main", Schema: "conc", Object: string(rune('a' + i))}
			tbl, err := s.Create(ctx, n, eventSchema, CreateOptions{})
			if err != nil {
				errs <- err
				return
			}
			for range appends {
				if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range tables {
		tbl, err := e.store.Load(ctx, ident.Name{Catalog: "main", Schema: "conc", Object: string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := tbl.Count(ctx); n != 2*appends {
			t.Errorf("%s has %d rows, want %d", tbl.Name(), n, 2*appends)
		}
	}
}

// TestMetadataCache checks that loads, refreshes and commits of a table
// whose metadata this process wrote do not read the metadata file back,
// and that a commit from another process is still seen (and fenced).
func TestMetadataCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := mustName(t, "main.demo.cached")
	tbl, err := e.store.Create(ctx, name, eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := recordFromJSON(t, eventSchema, `[{"id":1}]`)
	for range 5 {
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
			t.Fatal(err)
		}
	}
	other, err := e.store.Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := other.Count(ctx); n != 5 {
		t.Fatalf("second handle counts %d rows, want 5", n)
	}
	if got := e.store.mc.parsed.Load(); got != 0 {
		t.Fatalf("%d metadata files parsed for a table only this store wrote, want 0", got)
	}

	// Another process commits: this store's handles see it (one parse) and
	// a stale handle is fenced.
	remote, err := e.open(t).Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Append(ctx, []arrow.RecordBatch{rec}, map[string]string{"sluice.writer": "remote"}); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("append on a handle behind another process's commit: %v, want ErrConflict", err)
	}
	if tbl.SnapshotProperties()["sluice.writer"] != "remote" {
		t.Fatalf("after the conflict the handle is at %v, want the remote commit", tbl.SnapshotProperties())
	}
	if got := e.store.mc.parsed.Load(); got != 1 {
		t.Fatalf("%d metadata files parsed after one remote commit, want 1", got)
	}
	if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
		t.Fatal(err)
	}
	fresh, err := e.open(t).Load(ctx, name) // parses what the cached path wrote
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := fresh.Count(ctx); n != 7 {
		t.Fatalf("a new store counts %d rows, want 7", n)
	}
	if fresh.SnapshotID() != tbl.SnapshotID() {
		t.Fatalf("a new store is at snapshot %d, the writer at %d", fresh.SnapshotID(), tbl.SnapshotID())
	}
}

// TestMetadataCacheMemory checks that a handle committing again and
// again does not keep old metadata versions alive: iceberg-go's built
// metadata retains memory of its base, and committing from it, commit
// after commit, grew the heap by a copy of the snapshot list per commit
// (100 MB after 300 commits).
func TestMetadataCacheMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("300 commits")
	}
	ctx := context.Background()
	e := newEnv(t)
	tbl, err := e.store.Create(ctx, mustName(t, "main.demo.busy"), eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := recordFromJSON(t, eventSchema, `[{"id":1}]`)
	props := map[string]string{"sluice.offsets": `{"events":{"0":123456789,"1":123456789,"2":123456789}}`}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var at100 uint64
	for i := range 300 {
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, props); err != nil {
			t.Fatal(err)
		}
		if i == 99 {
			at100 = heap()
		}
	}
	if grown := int64(heap()) - int64(at100); grown > 16<<20 {
		t.Fatalf("heap grew by %d MiB from commit 100 to 300 of one handle, want well under 16 (the metadata holds 300 snapshots)", grown>>20)
	}
}

// TestMetadataCacheMatchesFile checks that the metadata a commit caches is
// the metadata it wrote: a fresh Store, parsing the file, sees the same.
func TestMetadataCacheMatchesFile(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := mustName(t, "main.demo.same")
	tbl, err := e.store.Create(ctx, name, eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := recordFromJSON(t, eventSchema, `[{"id":1}]`)
	for i := range 3 {
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, map[string]string{"sluice.n": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	fresh, err := e.open(t).Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cached, err := json.Marshal(tbl.tbl.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := json.Marshal(fresh.tbl.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	if string(cached) != string(parsed) {
		t.Fatalf("cached metadata\n%s\ndiffers from the file's\n%s", cached, parsed)
	}
	// The metadata file is written by marshalMetadata, which skips
	// json.Marshal's second pass: the bytes must be the same.
	direct, err := marshalMetadata(tbl.tbl.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	if string(direct) != string(cached) {
		t.Fatalf("marshalMetadata wrote\n%s\njson.Marshal writes\n%s", direct, cached)
	}
	// The metadata log lists the files before it: create + 3 commits.
	if prev := slices.Collect(tbl.tbl.Metadata().PreviousFiles()); len(prev) != 3 {
		t.Fatalf("metadata log %v, want the 3 earlier files", prev)
	}
}
