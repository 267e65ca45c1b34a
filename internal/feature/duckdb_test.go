package feature

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// DuckDB as a second, independent oracle: it reads the same Parquet files
// (the feature tables' data files and the label files) and computes each
// label row's features with its ASOF JOIN. The rules of docs/features.md
// ("Semantics") are spelled out in SQL: ties are broken by a window
// function over (commit, file path, row in file), the TTL nulls the
// features of a match older than it, and a table without a timestamp key
// is a plain LEFT JOIN on its key.
//
// testdata/duckdb/read.mjs runs the SQL (node and @duckdb/node-api,
// installed with `cd testdata/duckdb && npm install`). Without them the
// test is skipped, or fails under CI=true. (The helpers of
// internal/testutil/sluicetest cannot be used here: that package imports
// internal/node, which imports this one.)

// requireDuckDB returns the paths of node and of testdata/duckdb.
func requireDuckDB(t testing.TB) (node, dir string) {
	t.Helper()
	skip := func(msg string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node not on PATH; DuckDB tests need Node.js and `cd testdata/duckdb && npm install`")
	}
	dir, err = filepath.Abs(filepath.Join("..", "..", "testdata", "duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		skip("DuckDB not installed: run `cd testdata/duckdb && npm install`")
	}
	return node, dir
}

// duckDB runs query over a view t of files and returns the rows as
// DuckDB renders them in JSON.
func duckDB(t testing.TB, files []string, query string) []map[string]any {
	t.Helper()
	node, dir := requireDuckDB(t)
	req, _ := json.Marshal(map[string]any{"files": files, "sql": query})
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), node, "read.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(req)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("duckdb (node read.mjs): %v\nstderr:\n%s\nquery:\n%s", err, stderr.String(), query)
	}
	var res struct {
		Rows []map[string]any `json:"rows"`
	}
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("duckdb output: %v\n%s", err, stdout.String())
	}
	return res.Rows
}

// dataFile is one data file of a table and the commit (0, 1, …) that
// wrote it.
type dataFile struct {
	path   string
	commit int
}

// createTracked is testEnv.createTable that also returns each data file
// with the commit that added it, found by listing the table's files after
// every commit.
func (e *testEnv) createTracked(t testing.TB, name string, sc *arrow.Schema, props map[string]string, commits ...[][]any) []dataFile {
	t.Helper()
	ctx := context.Background()
	n, err := ident.Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := e.tables.Create(ctx, n, sc, table.CreateOptions{Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	var out []dataFile
	seen := map[string]bool{}
	for i, rows := range commits {
		rec := buildRecord(t, sc, rows)
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		files, err := tbl.DataFiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !seen[f] {
				seen[f] = true
				out = append(out, dataFile{path: f, commit: i})
			}
		}
	}
	return out
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// latestWrite is the CTE body of a feature table's rows read by DuckDB
// with their tie-break order: the later commit, then the later file by
// path, then the later row (docs/features.md, "Ties"). rank 1 is the row
// that wins among rows with the same partition (key and, with a
// timestamp key, time).
func latestWrite(files []dataFile, cols, partition string) string {
	var paths, commits []string
	for _, f := range files {
		paths = append(paths, sqlString(f.path))
		commits = append(commits, fmt.Sprintf("(%s, %d)", sqlString(f.path), f.commit))
	}
	return fmt.Sprintf(`SELECT %s FROM read_parquet([%s], filename = true, file_row_number = true) AS d
		JOIN (VALUES %s) AS c(path, commit_no) ON d.filename = c.path
		QUALIFY row_number() OVER (PARTITION BY %s ORDER BY c.commit_no DESC, d.filename DESC, d.file_row_number DESC) = 1`,
		cols, strings.Join(paths, ", "), strings.Join(commits, ", "), partition)
}

// TestDuckDBAsOf checks training sets, row by row, against DuckDB's ASOF
// JOIN over the same Parquet files, on randomized data with ties (one key
// and time in several commits and within one), TTLs (including the
// boundary: times are whole minutes), missing users, null keys and
// times, a two-column key of another integer width, a table without a
// timestamp key, several label files and several label chunks.
func TestDuckDBAsOf(t *testing.T) {
	requireDuckDB(t)
	cases := map[string]struct {
		seed                  uint64
		labels, users         int
		minutes               int
		activityTTL, storeTTL string
		chunkRows             int
	}{
		"ttl":        {seed: 11, labels: 3000, users: 40, minutes: 60, activityTTL: "5m", storeTTL: "20m"},
		"no ttl":     {seed: 12, labels: 2000, users: 30, minutes: 30},
		"dense ties": {seed: 13, labels: 2000, users: 4, minutes: 5, activityTTL: "2m", storeTTL: "1m"},
		"chunks":     {seed: 14, labels: 80_000, users: 1500, minutes: 300, activityTTL: "1h", chunkRows: BatchRows}, // 2 chunks
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(tc.seed, 5))
			w := genWorld(r, tc.labels, tc.users, tc.minutes, tc.activityTTL)
			e := newEnv(t)
			actProps := map[string]string{PropPrimaryKey: "user_id,feature_ts", PropTimeKey: "feature_ts"}
			if tc.activityTTL != "" {
				actProps[PropTTL] = tc.activityTTL
			}
			var storeProps map[string]string // no sluice.primary_key: the lookup names the key columns
			if tc.storeTTL != "" {
				storeProps = map[string]string{"ttl": tc.storeTTL}
			}
			var a, p, s [][][]any
			for i := range w.activity {
				a = append(a, activityRows(w.activity[i]))
				p = append(p, profileRows(w.profile[i]))
				s = append(s, storeRows(w.store[i]))
			}
			actFiles := e.createTracked(t, "main.features.user_activity", activitySchema, actProps, a...)
			profFiles := e.createTracked(t, "main.features.user_profile", profileSchema, map[string]string{PropPrimaryKey: "user_id"}, p...)
			storeFiles := e.createTracked(t, "main.features.store_item", storeSchema, storeProps, s...)

			// Two label files, read in name order.
			half := len(w.labels) / 2
			labelFiles := []string{filepath.Join(e.dir, "labels-0.parquet"), filepath.Join(e.dir, "labels-1.parquet")}
			writeParquet(t, labelFiles[0], labelSchema, w.labels[:half])
			writeParquet(t, labelFiles[1], labelSchema, w.labels[half:])

			// The training set, through the real code.
			ctx := context.Background()
			svc := e.service(Options{ChunkRows: tc.chunkRows})
			ts, err := svc.Create(ctx, "", trainingSpec(filepath.Join(e.dir, "labels-*.parquet")), "tester", nil)
			if err != nil {
				t.Fatal(err)
			}
			res, _, err := svc.Open(ctx, ts.Name)
			if err != nil {
				t.Fatal(err)
			}
			names, rows := cells(t, res)
			res.Release()

			// The same, by DuckDB.
			// asOf is a feature of an ASOF match: null for a label
			// without a time (DuckDB's ASOF LEFT JOIN matches those
			// with some row; rule 5 says they match nothing) and for a
			// match older than the TTL (rule 2).
			asOf := func(ttl, fts, expr string) string {
				cond := "l.lts IS NULL"
				if ttl != "" {
					d, err := ParseDuration(ttl)
					if err != nil {
						t.Fatal(err)
					}
					cond += fmt.Sprintf(" OR l.lts - %s > %d", fts, d.Microseconds())
				}
				return fmt.Sprintf("CASE WHEN %s THEN NULL ELSE %s END", cond, expr)
			}
			query := fmt.Sprintf(`WITH
			l AS (SELECT row_id, user_id, store_id, item, epoch_us(event_timestamp) AS lts FROM t),
			act AS (%s),
			prof AS (%s),
			st AS (%s)
			SELECT l.row_id::VARCHAR AS row_id,
				%s AS user_activity__fid, %s AS user_activity__revenue_1h, %s AS last_platform,
				prof.fid::VARCHAR AS user_profile__fid, prof.account_age_days::VARCHAR AS account_age_days, prof.country AS user_profile__country,
				%s AS store_item__fid, %s AS store_item__revenue_1h
			FROM l
			ASOF LEFT JOIN act ON l.user_id = act.user_id AND l.lts >= act.fts
			ASOF LEFT JOIN st ON l.store_id = st.store_id AND l.item = st.item AND l.lts >= st.fts
			LEFT JOIN prof ON l.user_id = prof.user_id
			ORDER BY l.row_id`,
				latestWrite(actFiles, "d.user_id, epoch_us(d.feature_ts) AS fts, d.fid, d.revenue_1h, d.last_platform", "d.user_id, d.feature_ts"),
				latestWrite(profFiles, "d.user_id, d.fid, d.account_age_days, d.country", "d.user_id"),
				latestWrite(storeFiles, "d.store_id, d.item, epoch_us(d.ts) AS fts, d.fid, d.revenue_1h", "d.store_id, d.item, d.ts"),
				asOf(tc.activityTTL, "act.fts", "act.fid::VARCHAR"),
				asOf(tc.activityTTL, "act.fts", "act.revenue_1h::VARCHAR"),
				asOf(tc.activityTTL, "act.fts", "act.last_platform"),
				asOf(tc.storeTTL, "st.fts", "st.fid::VARCHAR"),
				asOf(tc.storeTTL, "st.fts", "st.revenue_1h::VARCHAR"),
			)
			want := duckDB(t, labelFiles, query)

			if len(rows) != len(w.labels) || len(want) != len(w.labels) {
				t.Fatalf("sluice has %d rows, DuckDB %d, want %d (one per label)", len(rows), len(want), len(w.labels))
			}
			check := []string{"row_id", "user_activity__fid", "user_activity__revenue_1h", "last_platform",
				"user_profile__fid", "account_age_days", "user_profile__country", "store_item__fid", "store_item__revenue_1h"}
			idx := make([]int, len(check))
			for j, c := range check {
				idx[j] = colIndex(t, names, c)
			}
			matched := make([]int, len(check))
			bad := 0
			for i, row := range rows {
				for j, c := range check {
					got, exp := row[idx[j]], duckValue(want[i][c])
					if !sameValue(got, exp) {
						if bad++; bad <= 10 {
							t.Errorf("label row %d (%v): %s is %s, DuckDB says %s", i, w.labels[i], c, got, exp)
						}
					}
					if exp != "NULL" {
						matched[j]++
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%d values differ from DuckDB's", bad)
			}
			// The data must exercise both outcomes of every lookup.
			for j, c := range check[1:] {
				if m := matched[j+1]; m == 0 || m == len(rows) {
					t.Errorf("%s is set in %d of %d rows: the test data is degenerate", c, m, len(rows))
				}
			}
			t.Logf("%d label rows agree with DuckDB; features set: activity %d, profile %d, store %d",
				len(rows), matched[1], matched[4], matched[7])
		})
	}
}

// duckValue renders a DuckDB JSON value as cells does ("NULL" for null).
func duckValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return fmt.Sprint(v)
}

// sameValue compares a value of cells with a DuckDB rendering: numbers
// that parse as floats compare as floats (DuckDB writes 10.0 where Go
// writes 10).
func sameValue(got, want string) bool {
	if got == want {
		return true
	}
	g, err1 := strconv.ParseFloat(got, 64)
	w, err2 := strconv.ParseFloat(want, 64)
	return err1 == nil && err2 == nil && g == w
}
