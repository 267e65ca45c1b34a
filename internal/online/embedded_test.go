package online_test

import (
	"context"
	"errors"
	. "github.com/sluice-dev/sluice/internal/online"
	"testing"
	"time"
)

func openEmbedded(t testing.TB, dir string) *Embedded {
	t.Helper()
	s, err := OpenEmbedded(dir, nil, nil)
	if err != nil {
		t.Fatalf("OpenEmbedded: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestEmbeddedConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) Store { return openEmbedded(t, t.TempDir()) })
}

// TestEmbeddedConformanceFlushed runs the suite with every write flushed to
// an sstable, so that reads go through bloom filters and the block cache
// and range deletions cover files.
func TestEmbeddedConformanceFlushed(t *testing.T) {
	runConformance(t, func(t *testing.T) Store { return flushing{openEmbedded(t, t.TempDir())} })
}

type flushing struct{ *Embedded }

func (f flushing) Write(ctx context.Context, t Table, rows []Row) error {
	if err := f.Embedded.Write(ctx, t, rows); err != nil {
		return err
	}
	if err := f.Embedded.Flush(); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}

func TestEmbeddedRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenEmbedded(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb := Table{Name: "t", TTL: time.Hour}
	mustWrite(t, s, tb, row("u1", 10, 3, "a", Int64(1), "s", String("x")), row("u2", 10, 0, "a", Int64(2)))
	mustWrite(t, s, Table{Name: "gone"}, row("u1", 10, 0, "a", Int64(1)))
	if err := s.DeleteTable(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A second store on the same directory is refused while one is open.
	s = openEmbedded(t, dir)
	if s2, err := OpenEmbedded(dir, nil, nil); err == nil {
		s2.Close()
		t.Fatal("second OpenEmbedded of an open directory succeeded")
	}
	res := mustGet(t, s, tb, []Key{{String("u1")}, {String("u2")}}, []string{"a", "s"}, at(20))
	checkResult(t, "u1", res[0], 10, present(Int64(1)), present(String("x")))
	if res[0].Version != 3 {
		t.Errorf("u1 version %d, want 3", res[0].Version)
	}
	checkResult(t, "u2", res[1], 10, present(Int64(2)), notFound)
	res = mustGet(t, s, Table{Name: "gone"}, []Key{{String("u1")}}, []string{"a"}, at(20))
	checkResult(t, "deleted table", res[0], -1, notFound)
	// The newer-wins rule still sees the stored rows.
	mustWrite(t, s, tb, row("u1", 9, 9, "a", Int64(-1)))
	res = mustGet(t, s, tb, []Key{{String("u1")}}, []string{"a"}, at(20))
	checkResult(t, "u1 after older write", res[0], 10, present(Int64(1)))
}

func TestEmbeddedOptions(t *testing.T) {
	cases := map[string]EmbeddedOptions{
		"negative cache": {CacheSize: -1},
		"tiny memtable":  {MemTableSize: 1000},
		"too many bits":  {BloomBitsPerKey: 100},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := OpenEmbedded(t.TempDir(), nil, &o); !errors.Is(err, ErrInvalid) {
				t.Fatalf("OpenEmbedded: %v, want ErrInvalid", err)
			}
		})
	}
	s, err := OpenEmbedded(t.TempDir(), nil, &EmbeddedOptions{SyncWrites: true, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustWrite(t, s, userTable, row("u1", 1, 0, "a", Int64(1)))
}
