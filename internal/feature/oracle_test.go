package feature

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

const (
	baseUs   = int64(1_700_000_000_000_000)
	minuteUs = int64(60_000_000)
)

var (
	tsUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

	activitySchema = arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "feature_ts", Type: tsUTC, Nullable: true},
		{Name: "fid", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "revenue_1h", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "last_platform", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	profileSchema = arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "fid", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "account_age_days", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "country", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	storeSchema = arrow.NewSchema([]arrow.Field{
		{Name: "store_id", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "item", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ts", Type: tsUTC, Nullable: true},
		{Name: "fid", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "revenue_1h", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	labelSchema = arrow.NewSchema([]arrow.Field{
		{Name: "row_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "store_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "item", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_timestamp", Type: &arrow.TimestampType{Unit: arrow.Millisecond}, Nullable: true},
		{Name: "churn_label", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "experiment_split", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "country", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
)

// frow is a generated feature row: its key, time (nil: null) and fid, the
// number that every other feature value is derived from.
type frow struct {
	key []string
	ts  *int64
	fid int64
}

// world is randomized input: three feature tables and labels.
type world struct {
	activity, profile, store [][]frow // per commit
	labels                   [][]any
	ttl                      string
}

func genWorld(r *rand.Rand, nLabels, users, minutes int, ttl string) world {
	w := world{ttl: ttl}
	fid := int64(1)
	tsp := func() *int64 {
		if r.IntN(40) == 0 {
			return nil
		}
		v := baseUs + int64(r.IntN(minutes))*minuteUs
		return &v
	}
	user := func() string { return "u" + strconv.Itoa(r.IntN(users)) }
	store := func() (string, string) { return strconv.Itoa(r.IntN(4)), "i" + strconv.Itoa(r.IntN(3)) }
	for range 3 {
		var a, p, s []frow
		for range users * 3 {
			a = append(a, frow{key: []string{user()}, ts: tsp(), fid: fid})
			fid++
		}
		for range users / 2 {
			p = append(p, frow{key: []string{user()}, fid: fid})
			fid++
		}
		for range 30 {
			sid, it := store()
			s = append(s, frow{key: []string{sid, it}, ts: tsp(), fid: fid})
			fid++
		}
		w.activity, w.profile, w.store = append(w.activity, a), append(w.profile, p), append(w.store, s)
	}
	for i := range nLabels {
		var u any = "u" + strconv.Itoa(r.IntN(users+users/5)) // some users have no features
		if r.IntN(50) == 0 {
			u = nil
		}
		var ts any = baseUs + int64(r.IntN(minutes+5)-2)*minuteUs
		if r.IntN(60) == 0 {
			ts = nil
		}
		sid, it := store()
		sidv, _ := strconv.ParseInt(sid, 10, 64)
		w.labels = append(w.labels, []any{int64(i), u, sidv, it, ts, int64(r.IntN(2)), []string{"train", "test"}[r.IntN(2)], "c" + strconv.Itoa(r.IntN(3))})
	}
	return w
}

func activityRows(commit []frow) [][]any {
	var out [][]any
	for _, f := range commit {
		var ts any
		if f.ts != nil {
			ts = *f.ts
		}
		var rev any = float64(f.fid) / 2
		if f.fid%7 == 0 {
			rev = nil
		}
		out = append(out, []any{f.key[0], ts, f.fid, rev, "p" + strconv.FormatInt(f.fid%5, 10)})
	}
	return out
}

func profileRows(commit []frow) [][]any {
	var out [][]any
	for _, f := range commit {
		out = append(out, []any{f.key[0], f.fid, f.fid * 2, "k" + strconv.FormatInt(f.fid%3, 10)})
	}
	return out
}

func storeRows(commit []frow) [][]any {
	var out [][]any
	for _, f := range commit {
		sid, _ := strconv.ParseInt(f.key[0], 10, 64)
		var ts any
		if f.ts != nil {
			ts = *f.ts
		}
		out = append(out, []any{sid, f.key[1], ts, f.fid, float64(f.fid) * 10})
	}
	return out
}

// oracle is the brute-force as-of lookup: among every row of every commit
// with the label's key and (when the table has a timestamp key) a time at
// or before the label's and within ttl, the newest, ties going to the
// later commit and then the later row. It returns the fid or nil. Rows
// are grouped by key first (in commit and row order), only to keep the
// test fast.
type oracle map[string][]*frow

func newOracle(commits [][]frow) oracle {
	o := oracle{}
	for _, c := range commits {
		for i := range c {
			k := fmt.Sprint(c[i].key)
			o[k] = append(o[k], &c[i])
		}
	}
	return o
}

func (o oracle) lookup(key []string, labelTs *int64, hasTs bool, ttlUs int64) any {
	if key == nil {
		return nil
	}
	var best *frow
	for _, f := range o[fmt.Sprint(key)] {
		if hasTs {
			if f.ts == nil || labelTs == nil || *f.ts > *labelTs || (ttlUs > 0 && *labelTs-*f.ts > ttlUs) {
				continue
			}
			if best != nil && *f.ts < *best.ts {
				continue
			}
		}
		best = f // later rows win ties
	}
	if best == nil {
		return nil
	}
	return best.fid
}

func trainingSpec(labels string) Spec {
	return Spec{
		Labels:          labels,
		TimestampColumn: "event_timestamp",
		Label:           "churn_label",
		ExcludeColumns:  []string{"experiment_split"},
		Lookups: []Lookup{
			{Table: "main.features.user_activity", LookupKey: Strings{"user_id"}, Features: []string{"fid", "revenue_1h", "last_platform"}},
			{Table: "main.features.user_profile", LookupKey: Strings{"user_id"}},
			{Table: "main.features.store_item", LookupKey: Strings{"store_id", "item"}, TimestampKey: "ts", Features: []string{"fid", "revenue_1h"}},
		},
	}
}

func (e *testEnv) load(t testing.TB, w world) {
	t.Helper()
	props := map[string]string{PropPrimaryKey: "user_id,feature_ts", PropTimeKey: "feature_ts"}
	if w.ttl != "" {
		props[PropTTL] = w.ttl
	}
	var a, p, s [][][]any
	for i := range w.activity {
		a = append(a, activityRows(w.activity[i]))
		p = append(p, profileRows(w.profile[i]))
		s = append(s, storeRows(w.store[i]))
	}
	e.createTable(t, "main.features.user_activity", activitySchema, props, a...)
	e.createTable(t, "main.features.user_profile", profileSchema, map[string]string{PropPrimaryKey: "user_id"}, p...)
	// No sluice.primary_key: the lookup key names the table's key columns.
	e.createTable(t, "main.features.store_item", storeSchema, nil, s...)
}

// TestOracle compares training sets with the brute-force oracle on
// randomized data with ties (same key and time in several commits and
// within one), a TTL, missing and null keys, null times, a two-column key
// of another integer width, a table without a timestamp key and name
// clashes.
func TestOracle(t *testing.T) {
	cases := map[string]struct {
		seed           uint64
		labels, users  int
		minutes        int
		ttl            string
		chunkRows      int
		labelFileCount int
	}{
		"small":            {seed: 1, labels: 300, users: 20, minutes: 30, chunkRows: 0, labelFileCount: 1},
		"ttl":              {seed: 2, labels: 2000, users: 50, minutes: 40, ttl: "5m", labelFileCount: 3},
		"dense ties":       {seed: 3, labels: 1000, users: 5, minutes: 4, ttl: "2m", labelFileCount: 2},
		"chunks and globs": {seed: 4, labels: 150_000, users: 3000, minutes: 600, ttl: "1h", chunkRows: BatchRows, labelFileCount: 3},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(tc.seed, 99))
			w := genWorld(r, tc.labels, tc.users, tc.minutes, tc.ttl)
			e := newEnv(t)
			e.load(t, w)
			per := (len(w.labels) + tc.labelFileCount - 1) / tc.labelFileCount
			for i := 0; i < tc.labelFileCount; i++ {
				lo, hi := i*per, min((i+1)*per, len(w.labels))
				writeParquet(t, filepath.Join(e.dir, fmt.Sprintf("labels-%d.parquet", i)), labelSchema, w.labels[lo:hi])
			}
			svc := e.service(Options{ChunkRows: tc.chunkRows})
			ctx := context.Background()
			ts, err := svc.Create(ctx, "", trainingSpec(filepath.Join(e.dir, "labels-*.parquet")), "tester", nil)
			if err != nil {
				t.Fatal(err)
			}
			res, _, err := svc.Open(ctx, ts.Name)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Release()
			names, rows := cells(t, res)
			wantNames := []string{"row_id", "user_id", "store_id", "item", "event_timestamp", "churn_label", "country",
				"user_activity__fid", "user_activity__revenue_1h", "last_platform",
				"user_profile__fid", "account_age_days", "user_profile__country",
				"store_item__fid", "store_item__revenue_1h"}
			if !slices.Equal(names, wantNames) {
				t.Fatalf("columns\n got %v\nwant %v", names, wantNames)
			}
			if len(rows) != len(w.labels) || res.Progress() != int64(len(w.labels)) {
				t.Fatalf("got %d rows (progress %d), want %d", len(rows), res.Progress(), len(w.labels))
			}
			var ttlUs int64
			if tc.ttl != "" {
				d, _ := ParseDuration(tc.ttl)
				ttlUs = d.Microseconds()
			}
			oa, op, os := newOracle(w.activity), newOracle(w.profile), newOracle(w.store)
			matched := [3]int{}
			for i, row := range rows {
				l := w.labels[i]
				if row[0] != str(l[0]) {
					t.Fatalf("row %d is label %s: the label order changed", i, row[0])
				}
				var lts *int64
				if l[4] != nil {
					v := l[4].(int64)
					lts = &v
				}
				var u []string
				if l[1] != nil {
					u = []string{l[1].(string)}
				}
				sk := []string{strconv.FormatInt(l[2].(int64), 10), l[3].(string)}
				want := []any{oa.lookup(u, lts, true, ttlUs), op.lookup(u, lts, false, 0), os.lookup(sk, lts, true, 0)}
				gotFid := []string{row[7], row[10], row[13]}
				for k := range want {
					if gotFid[k] != str(want[k]) {
						t.Fatalf("label %d (%v) lookup %d: got fid %s, want %s", i, l, k, gotFid[k], str(want[k]))
					}
					if want[k] != nil {
						matched[k]++
					}
				}
				// The other features come from the same row.
				if f, ok := want[0].(int64); ok {
					rev := "NULL"
					if f%7 != 0 {
						rev = strconv.FormatFloat(float64(f)/2, 'g', -1, 64)
					}
					if row[8] != rev || row[9] != "p"+strconv.FormatInt(f%5, 10) {
						t.Fatalf("label %d: activity features %v from fid %d", i, row[8:10], f)
					}
				} else if row[8] != "NULL" || row[9] != "NULL" {
					t.Fatalf("label %d: no match but features %v", i, row[8:10])
				}
				if f, ok := want[1].(int64); ok && (row[11] != strconv.FormatInt(f*2, 10) || row[12] != "k"+strconv.FormatInt(f%3, 10)) {
					t.Fatalf("label %d: profile features %v from fid %d", i, row[11:13], f)
				}
				if f, ok := want[2].(int64); ok && row[14] != strconv.FormatFloat(float64(f)*10, 'g', -1, 64) {
					t.Fatalf("label %d: store features %v from fid %d", i, row[14], f)
				}
			}
			// The data must exercise both outcomes.
			for k, m := range matched {
				if m == 0 || m == len(rows) {
					t.Errorf("lookup %d matched %d of %d labels: the test data is degenerate", k, m, len(rows))
				}
			}
		})
	}
}
