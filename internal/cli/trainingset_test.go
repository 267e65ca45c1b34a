package cli_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sluice-dev/sluice/internal/feature"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/server"
	"github.com/sluice-dev/sluice/internal/table"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// TestTrainingSetCLI drives training sets through a real node: the CLI's
// create (Arrow stream → local Parquet), get, list, recreate (the same
// bytes after the feature table moved on), model log/get/list/delete, and the JSON
// API's output_path and errors, over real HTTP.
func TestTrainingSetCLI(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	dir := t.TempDir()
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	fsc := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "feature_ts", Type: ts, Nullable: true},
		{Name: "revenue_1h", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	name, _ := ident.Parse("main.features.user_activity")
	tbl, err := n.Tables.Create(ctx, name, fsc, table.CreateOptions{Properties: map[string]string{
		feature.PropPrimaryKey: "user_id,feature_ts", feature.PropTimeKey: "feature_ts", feature.PropTTL: "1h"}})
	if err != nil {
		t.Fatal(err)
	}
	const m = int64(60_000_000)
	appendRows := func(users []string, tss []int64, revs []float64) {
		t.Helper()
		b := array.NewRecordBuilder(memory.DefaultAllocator, fsc)
		defer b.Release()
		for i := range users {
			b.Field(0).(*array.StringBuilder).Append(users[i])
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(tss[i]))
			b.Field(2).(*array.Float64Builder).Append(revs[i])
		}
		rec := b.NewRecordBatch()
		defer rec.Release()
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
			t.Fatal(err)
		}
	}
	appendRows([]string{"u1", "u1", "u2", "u3"}, []int64{10 * m, 20 * m, 10 * m, 0}, []float64{1, 2, 3, 4})

	// Labels: u1 at 15 (→ 1), at 20 (→ 2, inclusive), at 5 (before any: null);
	// u2 at 200 (older than the 1h TTL: null); u3 at 30 (→ 4); u9 (unknown).
	lsc := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_timestamp", Type: ts, Nullable: true},
		{Name: "churn_label", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "experiment_split", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	lb := array.NewRecordBuilder(memory.DefaultAllocator, lsc)
	for i, u := range []string{"u1", "u1", "u1", "u2", "u3", "u9"} {
		lb.Field(0).(*array.StringBuilder).Append(u)
		lb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp([]int64{15, 20, 5, 200, 30, 30}[i] * m))
		lb.Field(2).(*array.Int64Builder).Append(int64(i % 2))
		lb.Field(3).(*array.StringBuilder).Append("train")
	}
	lrec := lb.NewRecordBatch()
	lf, err := os.Create(filepath.Join(dir, "labels.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := pqarrow.NewFileWriter(lsc, lf, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.Write(lrec); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	spec := `labels: labels.parquet
timestamp_column: event_timestamp
label: churn_label
exclude_columns: [experiment_split]
lookups:
  - table: main.features.user_activity
    lookup_key: user_id
    features: [revenue_1h]
`
	if err := os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"SLUICE_SERVER": n.URL()}
	t.Chdir(dir)

	code, out, errOut := run(t, vars, "", "training-set", "create", "-f", "spec.yaml", "--out", "train.parquet", "--name", "main.ml.churn_v1", "--progress")
	if code != 0 || !strings.Contains(out, "training set main.ml.churn_v1: wrote 6 rows, 4 columns to train.parquet") {
		t.Fatalf("create: %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "100%") {
		t.Errorf("no progress bar on stderr with --progress: %q", errOut)
	}
	got := readParquet(t, "train.parquet")
	want := "u1 15 0 1 | u1 20 1 2 | u1 5 0 NULL | u2 200 1 NULL | u3 30 0 4 | u9 30 1 NULL"
	if got != want {
		t.Fatalf("rows\n got %s\nwant %s", got, want)
	}

	// The table moves on; recreate reads the recorded snapshot.
	appendRows([]string{"u1", "u2"}, []int64{15 * m, 190 * m}, []float64{100, 200})
	code, out, errOut = run(t, vars, "", "training-set", "recreate", "main.ml.churn_v1", "--out", "again.parquet")
	if code != 0 {
		t.Fatalf("recreate: %s %s", out, errOut)
	}
	a, _ := os.ReadFile("train.parquet")
	b, _ := os.ReadFile("again.parquet")
	if !bytes.Equal(a, b) || len(a) == 0 {
		t.Fatalf("recreate wrote other bytes (%d vs %d)", len(b), len(a))
	}
	// A new training set sees the new rows.
	code, out, errOut = run(t, vars, "", "training-set", "create", "-f", "spec.yaml", "--out", "v2.parquet", "--name", "main.ml.churn_v2")
	if code != 0 {
		t.Fatalf("create v2: %s %s", out, errOut)
	}
	if got := readParquet(t, "v2.parquet"); got != "u1 15 0 100 | u1 20 1 2 | u1 5 0 NULL | u2 200 1 200 | u3 30 0 4 | u9 30 1 NULL" {
		t.Fatalf("v2 rows: %s", got)
	}

	code, out, _ = run(t, vars, "", "training-set", "get", "main.ml.churn_v1")
	if code != 0 || !strings.Contains(out, "lookup:     main.features.user_activity at snapshot") || !strings.Contains(out, "ttl 1h") {
		t.Fatalf("get: %s", out)
	}
	code, out, _ = run(t, vars, "", "training-set", "list")
	if code != 0 || !strings.Contains(out, "main.ml.churn_v1") || !strings.Contains(out, "main.ml.churn_v2") {
		t.Fatalf("list: %s", out)
	}
	code, out, errOut = run(t, vars, "", "model", "log", "main.ml.churn_model", "--training-set", "main.ml.churn_v1")
	if code != 0 || !strings.Contains(out, "model main.ml.churn_model: training set main.ml.churn_v1") || !strings.Contains(out, "main.features.user_activity by user_id: revenue_1h") {
		t.Fatalf("model log: %s %s", out, errOut)
	}
	code, _, errOut = run(t, vars, "", "model", "log", "main.ml.m2", "--training-set", "nope")
	if code == 0 || !strings.Contains(errOut, "training set nope") {
		t.Fatalf("model log against a missing training set: %s", errOut)
	}
	code, out, _ = run(t, vars, "", "model", "get", "main.ml.churn_model", "-o", "json")
	if code != 0 || !strings.Contains(out, `"training_set": "main.ml.churn_v1"`) || !strings.Contains(out, `"revenue_1h"`) {
		t.Fatalf("model get: %s", out)
	}
	// A renamed feature is shown with the training set's column name,
	// the name serving returns it under.
	renamed := strings.Replace(spec, "    features: [revenue_1h]\n", "    features: [revenue_1h]\n    rename: {revenue_1h: rev}\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "renamed.yaml"), []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut = run(t, vars, "", "training-set", "create", "-f", "renamed.yaml", "--name", "main.ml.churn_renamed"); code != 0 {
		t.Fatalf("create renamed: %s %s", out, errOut)
	}
	if code, out, errOut = run(t, vars, "", "model", "log", "main.ml.churn_renamed_model", "--training-set", "main.ml.churn_renamed"); code != 0 {
		t.Fatalf("model log renamed: %s %s", out, errOut)
	}
	code, out, _ = run(t, vars, "", "model", "get", "main.ml.churn_renamed_model")
	if code != 0 || !strings.Contains(out, "main.features.user_activity by user_id: revenue_1h as rev\n") {
		t.Fatalf("model get with a rename: %s", out)
	}
	code, out, _ = run(t, vars, "", "model", "get", "main.ml.churn_renamed_model", "-o", "json")
	if code != 0 || !strings.Contains(out, `"columns": [`) || !strings.Contains(out, `"rev"`) {
		t.Fatalf("model get -o json with a rename: %s", out)
	}
	code, out, errOut = run(t, vars, "", "model", "list")
	if code != 0 || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "TRAINING SET") || !strings.Contains(out, "FEATURE TABLES") {
		t.Fatalf("model list: %d %s %s", code, out, errOut)
	}
	for _, want := range [][]string{
		{"main.ml.churn_model ", "main.ml.churn_v1 ", "main.features.user_activity "},
		{"main.ml.churn_renamed_model ", "main.ml.churn_renamed ", "main.features.user_activity "},
	} {
		if !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool {
			return strings.HasPrefix(l, want[0]) && strings.Contains(l, want[1]) && strings.Contains(l, want[2])
		}) {
			t.Errorf("model list has no line %q: %s", want, out)
		}
	}
	// Deleting a model forgets it and keeps its training set.
	code, out, errOut = run(t, vars, "", "model", "delete", "main.ml.churn_model")
	if code != 0 || out != "model main.ml.churn_model deleted\n" {
		t.Fatalf("model delete: %d %s %s", code, out, errOut)
	}
	code, _, errOut = run(t, vars, "", "model", "get", "main.ml.churn_model")
	if code == 0 || !strings.Contains(errOut, "not found") || !strings.Contains(errOut, "model main.ml.churn_model") {
		t.Fatalf("model get after delete: %d %s", code, errOut)
	}
	code, _, errOut = run(t, vars, "", "model", "delete", "main.ml.churn_model")
	if code == 0 || !strings.Contains(errOut, "not found") {
		t.Fatalf("model delete twice: %d %s", code, errOut)
	}
	if code, out, errOut = run(t, vars, "", "training-set", "get", "main.ml.churn_v1"); code != 0 {
		t.Fatalf("training set gone with its model: %s %s", out, errOut)
	}
	code, out, _ = run(t, vars, "", "model", "list")
	if code != 0 || strings.Contains(out, "main.ml.churn_model ") || !strings.Contains(out, "main.ml.churn_renamed_model") {
		t.Fatalf("model list after delete: %s", out)
	}

	// The JSON API: written on the server, and the errors.
	c := sluicetest.NewClient(n.URL(), "")
	var resp server.TrainingSetResponse
	req := map[string]any{"name": "main.ml.server_side", "output_path": filepath.Join(dir, "server.parquet"),
		"spec": map[string]any{"labels": filepath.Join(dir, "labels.parquet"), "timestamp_column": "event_timestamp",
			"lookups": []any{map[string]any{"table": "main.features.user_activity", "lookup_key": "user_id"}}}}
	if err := c.Do(ctx, http.MethodPost, "/api/v1/training-sets", req, 201, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.RowsWritten != 6 || resp.Bytes == 0 || len(resp.TrainingSet.Plan.Lookups) != 1 {
		t.Fatalf("server-side create: %+v", resp)
	}
	for name, tc := range map[string]struct {
		body   any
		status int
		msg    string
	}{
		"taken name":     {body: req, status: 409, msg: "already exists"},
		"unknown table":  {body: map[string]any{"spec": map[string]any{"labels": filepath.Join(dir, "labels.parquet"), "timestamp_column": "event_timestamp", "lookups": []any{map[string]any{"table": "main.features.nope", "lookup_key": "user_id"}}}}, status: 404, msg: "nope"},
		"unknown column": {body: map[string]any{"spec": map[string]any{"labels": filepath.Join(dir, "labels.parquet"), "timestamp_column": "ts", "lookups": []any{map[string]any{"table": "main.features.user_activity", "lookup_key": "user_id"}}}}, status: 400, msg: `is not a column of the labels`},
		"missing labels": {body: map[string]any{"spec": map[string]any{"labels": filepath.Join(dir, "nope-*.parquet"), "timestamp_column": "ts", "lookups": []any{map[string]any{"table": "main.features.user_activity", "lookup_key": "user_id"}}}}, status: 400, msg: "no such file"},
	} {
		err := c.Do(ctx, http.MethodPost, "/api/v1/training-sets", tc.body, 0, nil) // any status is a StatusError
		if se, ok := err.(*sluicetest.StatusError); !ok || se.Status != tc.status || !strings.Contains(se.Body, tc.msg) {
			t.Errorf("%s: %v, want %d mentioning %q", name, err, tc.status, tc.msg)
		}
	}
	// A changed labels file makes recreate fail, not lie.
	if err := os.WriteFile(filepath.Join(dir, "labels.parquet"), []byte("not parquet any more"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = run(t, vars, "", "training-set", "recreate", "main.ml.churn_v1", "--out", "x.parquet")
	if code == 0 || !strings.Contains(errOut, "labels") {
		t.Fatalf("recreate after the labels changed: %d %s", code, errOut)
	}
	if err := c.Do(ctx, http.MethodDelete, "/api/v1/training-sets/main.ml.churn_v2", nil, 204, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, http.MethodGet, "/api/v1/training-sets/main.ml.churn_v2", nil, 404, nil); err != nil {
		t.Fatal(err)
	}

	// Models over the JSON API: the list, and delete (owner only, 404
	// for an unknown model).
	var ml server.ModelList
	if err := c.Do(ctx, http.MethodGet, "/api/v1/models", nil, 200, &ml); err != nil {
		t.Fatal(err)
	}
	if len(ml.Models) != 1 || ml.Models[0].Name != "main.ml.churn_renamed_model" || ml.Models[0].TrainingSet != "main.ml.churn_renamed" ||
		len(ml.Models[0].Features) != 1 || ml.Models[0].Features[0].Columns[0] != "rev" {
		t.Fatalf("GET /api/v1/models = %+v", ml)
	}
	other := sluicetest.NewClient(n.URL(), "mallory")
	if err := other.Do(ctx, http.MethodDelete, "/api/v1/models/main.ml.churn_renamed_model", nil, 403, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, http.MethodDelete, "/api/v1/models/main.ml.nope", nil, 404, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, http.MethodDelete, "/api/v1/models/main.ml.churn_renamed_model", nil, 204, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, http.MethodGet, "/api/v1/models/main.ml.churn_renamed_model", nil, 404, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, http.MethodGet, "/api/v1/training-sets/main.ml.churn_renamed", nil, 200, nil); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := c.Do(ctx, http.MethodGet, "/api/v1/models", nil, 200, &raw); err != nil {
		t.Fatal(err)
	}
	if l, ok := raw["models"].([]any); !ok || len(l) != 0 {
		t.Fatalf("GET /api/v1/models with none = %v, want {\"models\": []}", raw)
	}
}

// readParquet renders a training set file as "user minute label revenue"
// rows joined by " | ".
func readParquet(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 0)
	defer tr.Release()
	var rows []string
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			rev := "NULL"
			if c := rec.Column(3); c.IsValid(i) {
				rev = c.ValueStr(i)
			}
			us := int64(rec.Column(1).(*array.Timestamp).Value(i))
			rows = append(rows, strings.Join([]string{rec.Column(0).ValueStr(i), itoa(us / 60_000_000), rec.Column(2).ValueStr(i), rev}, " "))
		}
	}
	return strings.Join(rows, " | ")
}

func itoa(v int64) string { return strconvFormat(v) }

func strconvFormat(v int64) string { return strconv.FormatInt(v, 10) }
