package feature

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/sluice-dev/sluice/internal/ident"
)

// TestRecreateByteIdentical writes a training set, changes every table it
// read, and recreates it: the Parquet files are byte-identical (the plan
// pins the snapshots and the writer's layout depends only on the rows).
// A training set created after the change differs; going through the
// Arrow stream (what the CLI does) gives the same bytes too.
func TestRecreateByteIdentical(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 7))
	w := genWorld(r, 5000, 200, 120, "30m")
	e := newEnv(t)
	e.load(t, w)
	labels := filepath.Join(e.dir, "labels.parquet")
	writeParquet(t, labels, labelSchema, w.labels)
	svc := e.service(Options{})
	spec := trainingSpec(labels)
	ts, err := svc.Create(ctx, "main.ml.train_v1", spec, "tester", nil)
	if err != nil {
		t.Fatal(err)
	}
	first := write(t, svc, ts.Name, filepath.Join(e.dir, "first.parquet"))

	// New rows in every feature table: newer snapshots.
	for _, name := range []string{"main.features.user_activity", "main.features.user_profile", "main.features.store_item"} {
		n, _ := ident.Parse(name)
		tbl, err := e.tables.Load(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		var rows [][]any
		switch name {
		case "main.features.user_activity":
			rows = activityRows(w.activity[0])
		case "main.features.user_profile":
			rows = profileRows(w.profile[0])
		default:
			rows = storeRows(w.store[0])
		}
		rec := buildRecord(t, tbl.ArrowSchema(), rows)
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	again := write(t, svc, ts.Name, filepath.Join(e.dir, "again.parquet"))
	if !bytes.Equal(first, again) {
		t.Fatalf("recreate wrote %d bytes that differ from the first %d", len(again), len(first))
	}
	got, err := svc.Get(ctx, ts.Name)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range got.Plan.Lookups {
		if l.Snapshot != ts.Plan.Lookups[i].Snapshot || l.Snapshot == 0 {
			t.Fatalf("lookup %d: recorded snapshot %d, created with %d", i, l.Snapshot, ts.Plan.Lookups[i].Snapshot)
		}
	}

	// Through the Arrow IPC stream, as the CLI and HTTP clients do.
	res, _, err := svc.Open(ctx, ts.Name)
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if _, err := WriteArrowStream(&stream, res, nil); err != nil {
		t.Fatal(err)
	}
	res.Release()
	ir, err := ipc.NewReader(&stream)
	if err != nil {
		t.Fatal(err)
	}
	var viaStream bytes.Buffer
	if _, err := WriteParquet(&viaStream, ir, nil); err != nil {
		t.Fatal(err)
	}
	ir.Release()
	if !bytes.Equal(first, viaStream.Bytes()) {
		t.Fatal("Parquet written from the Arrow stream differs from the one written directly")
	}

	// Created now, the same spec reads the new snapshots: other rows.
	ts2, err := svc.Create(ctx, "main.ml.train_v2", spec, "tester", nil)
	if err != nil {
		t.Fatal(err)
	}
	if now := write(t, svc, ts2.Name, filepath.Join(e.dir, "now.parquet")); bytes.Equal(now, first) {
		t.Fatal("a training set over newer snapshots is identical: the test changes nothing")
	}
	if _, err := svc.Create(ctx, "main.ml.train_v2", spec, "tester", nil); err == nil {
		t.Fatal("creating a training set under a taken name succeeded")
	}

	// A changed labels file is refused, not silently read.
	time.Sleep(10 * time.Millisecond)
	writeParquet(t, labels, labelSchema, w.labels[:100])
	if _, _, err := svc.Open(ctx, ts.Name); !errors.Is(err, ErrChanged) {
		t.Fatalf("recreate after the labels changed: %v, want ErrChanged", err)
	}
}

func write(t *testing.T, svc *Service, name, path string) []byte {
	t.Helper()
	res, _, err := svc.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if _, err := WriteParquetFile(path, res, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseDuration(t *testing.T) {
	cases := map[string]struct {
		in   string
		want time.Duration
		bad  bool
	}{
		"days":     {in: "7d", want: 7 * 24 * time.Hour},
		"hours":    {in: "36h", want: 36 * time.Hour},
		"mixed":    {in: "1d12h30m", want: 36*time.Hour + 30*time.Minute},
		"seconds":  {in: "90s", want: 90 * time.Second},
		"spaces":   {in: " 2h ", want: 2 * time.Hour},
		"empty":    {in: "", bad: true},
		"no unit":  {in: "7", bad: true},
		"negative": {in: "-1h", bad: true},
		"zero":     {in: "0s", bad: true},
		"junk":     {in: "7 days", bad: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.bad != (err != nil) || (!tc.bad && got != tc.want) {
				t.Fatalf("ParseDuration(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

func TestParseSpec(t *testing.T) {
	cases := map[string]struct {
		yaml string
		err  string // "" when valid
	}{
		"the issue's example": {yaml: `
labels: labels.parquet            # or a table name
timestamp_column: event_timestamp
label: churn_label
exclude_columns: [experiment_split]
lookups:
  - table: main.features.user_activity
    lookup_key: user_id
    features: [event_count_1h, revenue_1h, sessions_1h, last_platform]
  - table: main.features.user_profile
    lookup_key: [user_id]
    features: [account_age_days, subscription_tier]
    timestamp_key: "-"
    rename: {subscription_tier: tier}
`},
		"unknown field":     {yaml: "labels: a.parquet\ntimestamp_column: ts\nlookups: [{table: a.b.c, lookup_key: k}]\nlabel_column: x\n", err: "label_column"},
		"no lookups":        {yaml: "labels: a.parquet\ntimestamp_column: ts\n", err: "lookups is empty"},
		"no timestamp":      {yaml: "labels: a.parquet\nlookups: [{table: a.b.c, lookup_key: k}]\n", err: "timestamp_column is required"},
		"bad table":         {yaml: "labels: a.parquet\ntimestamp_column: ts\nlookups: [{table: features, lookup_key: k}]\n", err: "lookups[0].table"},
		"no key":            {yaml: "labels: a.parquet\ntimestamp_column: ts\nlookups: [{table: a.b.c}]\n", err: "lookup_key is required"},
		"bad rename":        {yaml: "labels: a.parquet\ntimestamp_column: ts\nlookups: [{table: a.b.c, lookup_key: k, features: [f], rename: {f: 'a b'}}]\n", err: "not a column name"},
		"duplicate feature": {yaml: "labels: a.parquet\ntimestamp_column: ts\nlookups: [{table: a.b.c, lookup_key: k, features: [f, f]}]\n", err: "listed twice"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := ParseSpec([]byte(tc.yaml))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s.Lookups[0].LookupKey[0] != "user_id" || s.Lookups[1].LookupKey[0] != "user_id" || s.LabelsIsTable() {
					t.Fatalf("parsed %+v", s)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !bytes.Contains([]byte(err.Error()), []byte(tc.err)) {
				t.Fatalf("got %v, want an ErrInvalid mentioning %q", err, tc.err)
			}
		})
	}
	if !(Spec{Labels: "main.ml.labels"}).LabelsIsTable() || (Spec{Labels: "dir/x.parquet"}).LabelsIsTable() {
		t.Fatal("LabelsIsTable")
	}
}
