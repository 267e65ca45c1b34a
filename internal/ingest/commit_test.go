package ingest

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/source/kafka"
)

// TestAppendFencedRetriesCommit checks the committer's append: when
// another writer commits between this handle's load and its commit, the
// data file is written once and only the commit is retried, as long as
// the table's offsets are still the batch's; when the offsets moved, the
// session is fenced and nothing is appended.
func TestAppendFencedRetriesCommit(t *testing.T) {
	ctx := context.Background()
	e := newMergeEnv(t)
	sc := e.ingestionSchema(e.spec(""))
	const start = `{"tx":{"0":3}}`
	e.createTable("main.demo.tx_ingestion", sc, txRow("k", "a", 1, "", "2026-01-01T00:00:00Z", 0, 2, "stream"))
	mine, err := e.store.Load(ctx, mustName("main.demo.tx_ingestion"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.store.Load(ctx, mustName("main.demo.tx_ingestion"))
	if err != nil {
		t.Fatal(err)
	}
	expect, err := kafka.DecodeOffsets(start)
	if err != nil {
		t.Fatal(err)
	}
	// Another writer that leaves the offsets alone (as maintenance does)
	// commits first: mine is stale now.
	if err := other.Append(ctx, nil, map[string]string{PropOffsets: start, "note": "other"}); err != nil {
		t.Fatal(err)
	}
	files := dataFiles(t, e.dir)
	rec := jsonRecord(t, sc, txRow("k", "b", 2, "", "2026-01-01T00:00:01Z", 0, 3, "stream"))
	defer rec.Release()
	if err := appendFenced(ctx, mine, rec, map[string]string{PropOffsets: `{"tx":{"0":4}}`}, expect); err != nil {
		t.Fatalf("append after a commit that kept the offsets: %v", err)
	}
	if got := dataFiles(t, e.dir); got != files+1 {
		t.Errorf("data files: %d before, %d after; want one written, once", files, got)
	}
	if got, want := tableRows(t, e.store, "main.demo.tx_ingestion"), []string{"stream:a:1", "stream:b:2"}; !slices.Equal(got, want) {
		t.Errorf("rows = %v, want %v", got, want)
	}

	// Another writer moves the offsets: the stale handle is fenced.
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Append(ctx, nil, map[string]string{PropOffsets: `{"tx":{"0":9}}`}); err != nil {
		t.Fatal(err)
	}
	expect, _ = kafka.DecodeOffsets(`{"tx":{"0":4}}`)
	rec2 := jsonRecord(t, sc, txRow("k", "c", 3, "", "2026-01-01T00:00:02Z", 0, 4, "stream"))
	defer rec2.Release()
	err = appendFenced(ctx, mine, rec2, map[string]string{PropOffsets: `{"tx":{"0":5}}`}, expect)
	if !errors.Is(err, errFenced) {
		t.Fatalf("append after another writer moved the offsets: %v, want errFenced", err)
	}
	if got, want := tableRows(t, e.store, "main.demo.tx_ingestion"), []string{"stream:a:1", "stream:b:2"}; !slices.Equal(got, want) {
		t.Errorf("rows after fencing = %v, want %v", got, want)
	}
}

// dataFiles counts the Parquet files under dir.
func dataFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
