package node_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/feature"
	"github.com/sluice-dev/sluice/internal/feature/window"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/publish"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// windowedSpec is the example, over a stream of this test.
const windowedSpec = `
name: main.features.user_activity
source: main.demo.events_ingestion
entity: {user_id: value.user_id}
timestamp: value.event_ts
features:
  - {name: event_count_1h,   function: count,          window: 1h}
  - {name: revenue_1h,       function: sum,            column: value.revenue, filter: "value.event_type = 'purchase'", window: 1h}
  - {name: sessions_1h,      function: count_distinct, column: value.session_id, window: 1h}
  - {name: last_platform,    function: last,           column: value.platform}
  - {name: events_1d,        function: count,          window: 1d}
ttl: 7d
online: true
`

type activityEvent struct {
	user, kind, session, platform string
	ts                            time.Time
	revenue                       float64
}

// activityOracle computes the features of user at t by brute force from
// the documented definition: events in [t - w rounded up to the window's
// precision (1 s for 1 h, 1 min for 1 d), t].
func activityOracle(evs []activityEvent, user string, t time.Time) []any {
	start1h := t.Add(-time.Hour)
	if r := start1h.Sub(start1h.Truncate(time.Second)); r > 0 {
		start1h = start1h.Truncate(time.Second).Add(time.Second)
	}
	start1d := t.Add(-24 * time.Hour)
	if r := start1d.Sub(start1d.Truncate(time.Minute)); r > 0 {
		start1d = start1d.Truncate(time.Minute).Add(time.Minute)
	}
	var count, count1d int64
	var revenue float64
	hasRevenue := false
	sessions := map[string]bool{}
	var last string
	var lastTS time.Time
	seen := false
	for _, e := range evs {
		if e.user != user || e.ts.After(t) {
			continue
		}
		seen = true
		if !e.ts.Before(start1d) {
			count1d++
		}
		if e.ts.Before(start1h) {
			if e.ts.After(lastTS) || (e.ts.Equal(lastTS) && e.platform > last) {
				last, lastTS = e.platform, e.ts
			}
			continue
		}
		count++
		if e.kind == "purchase" {
			revenue += e.revenue
			hasRevenue = true
		}
		sessions[e.session] = true
		if e.ts.After(lastTS) || (e.ts.Equal(lastTS) && e.platform > last) {
			last, lastTS = e.platform, e.ts
		}
	}
	if !seen {
		return []any{nil, nil, nil, nil, nil}
	}
	var rev any
	if hasRevenue {
		rev = revenue
	}
	return []any{count, rev, int64(len(sessions)), last, count1d}
}

func sameFeature(a, b any) bool {
	fa, ok1 := a.(float64)
	fb, ok2 := b.(float64)
	if ok1 && ok2 {
		return math.Abs(fa-fb) <= 1e-9*math.Max(1, math.Abs(fa))
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func onlineAny(v online.Value) any {
	switch v.Kind() {
	case online.KindNull:
		return nil
	case online.KindInt64:
		return v.Int64()
	case online.KindFloat64:
		return v.Float64()
	case online.KindString:
		return v.Str()
	}
	return v.String()
}

// TestWindowedFeatures runs the windowed feature spec end to end:
// events produced to Kafka, ingested by a stream, turned into the feature
// log by the pipeline the spec compiles to, folded into online tiles, and
// served. At several read times the online values must equal a
// brute-force oracle over the produced events, and a training set with
// one label per (user, read time) must hold the same values (parity).
func TestWindowedFeatures(t *testing.T) {
	n := sluicetest.StartNode(t)
	ctx := sluicetest.Context(t)
	api := sluicetest.NewClient(n.URL(), "alice")
	api.MustCreateTopic(t, "events", 1)
	api.MustCreateStream(t, fmt.Sprintf(`
name: main.demo.events
source: {kafka: {subscribe: events}}
connection: {bootstrap_servers: %s}
schema:
  payload:
    json_schema:
      type: object
      properties:
        user_id:    {type: string}
        event_ts:   {type: string, format: date-time}
        event_type: {type: string}
        revenue:    {type: number}
        session_id: {type: string}
        platform:   {type: string}
ingestion: {destination: main.demo.events_ingestion, commit_interval: 100ms}
`, n.BrokerAddr()))

	// A bad spec is refused with the field named.
	var bad map[string]any
	err := api.Do(ctx, "POST", "/api/v1/feature-tables", map[string]any{"name": "main.features.x", "source": "main.demo.events_ingestion",
		"entity": map[string]string{"user_id": "value.user_id"}, "timestamp": "value.event_ts",
		"features": []map[string]string{{"name": "n", "function": "median", "window": "1h"}}}, 400, &bad)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(bad), "unknown function \"median\"") {
		t.Fatalf("bad spec: %v", bad)
	}
	// The spec, as the CLI sends it (YAML parsed, then JSON).
	var created struct {
		Name     string `json:"name"`
		Pipeline string `json:"pipeline"`
	}
	if err := api.Do(ctx, "POST", "/api/v1/feature-tables", yamlToJSON(t, windowedSpec), 201, &created); err != nil {
		t.Fatal(err)
	}
	if created.Pipeline != "main.features.user_activity_pipeline" {
		t.Fatalf("created %+v", created)
	}

	rng := rand.New(rand.NewPCG(4, 2))
	users := []string{"u0", "u1", "u2", "u3"}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var evs []activityEvent
	var lines []string
	for i := range 400 {
		e := activityEvent{
			user: users[rng.IntN(len(users))], kind: []string{"view", "click", "purchase"}[rng.IntN(3)],
			session: fmt.Sprintf("s%d", rng.IntN(12)), platform: []string{"ios", "android", "web"}[rng.IntN(3)],
			// Half over the last 26 hours, half over the last 70 minutes,
			// in order with some late ones.
			ts:      now.Add(-26 * time.Hour).Add(time.Duration(i) * 26 * time.Hour / 200).Add(-time.Duration(rng.IntN(1800)) * time.Second),
			revenue: float64(rng.IntN(10000)) / 100,
		}
		if i >= 200 {
			e.ts = now.Add(-70 * time.Minute).Add(time.Duration(i-199) * 70 * time.Minute / 200).Add(-time.Duration(rng.IntN(120_000)) * time.Millisecond)
		}
		evs = append(evs, e)
		b, _ := json.Marshal(map[string]any{"user_id": e.user, "event_ts": e.ts.Format(time.RFC3339Nano), "event_type": e.kind,
			"revenue": e.revenue, "session_id": e.session, "platform": e.platform})
		lines = append(lines, e.user+":"+string(b))
	}
	sluicetest.Produce(t, n.BrokerAddr(), "events", time.Time{}, lines...)

	name, _ := ident.Parse("main.features.user_activity")
	keys := make([]online.Key, len(users))
	for i, u := range users {
		keys[i] = online.Key{online.String(u)}
	}
	features := []string{"event_count_1h", "revenue_1h", "sessions_1h", "last_platform", "events_1d"}
	read := func(at time.Time) []online.Result {
		tbl, err := n.Tables.Load(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		ft, err := publish.Describe(tbl)
		if err != nil {
			t.Fatal(err)
		}
		res, err := ft.Get(ctx, n.Online, keys, features, at)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	last := now
	sluicetest.Eventually(t, 60*time.Second, "every event counted online", func() (bool, string) {
		if _, err := n.Tables.Load(ctx, name); err != nil {
			return false, err.Error()
		}
		var total int64
		for _, r := range read(last) {
			if r.Found {
				total += r.Values[4].Int64()
			}
		}
		// events_1d at now covers the last day: count the oracle's.
		var want int64
		for _, u := range users {
			if v := activityOracle(evs, u, last)[4]; v != nil {
				want += v.(int64)
			}
		}
		return total == want && want > 0, fmt.Sprintf("%d of %d", total, want)
	})

	// Read at several times from now on, as serving does, and keep them
	// as labels.
	var readTimes []time.Time
	served := map[string][]any{}
	for i, d := range []time.Duration{0, 17 * time.Second, 10 * time.Minute, 59*time.Minute + 30*time.Second, 3 * time.Hour, 30 * time.Hour} {
		at := now.Add(d)
		readTimes = append(readTimes, at)
		res := read(at)
		for ui, u := range users {
			got := make([]any, len(features))
			for fi := range features {
				got[fi] = onlineAny(res[ui].Values[fi])
			}
			want := activityOracle(evs, u, at)
			for fi, f := range features {
				if !sameFeature(got[fi], want[fi]) {
					t.Errorf("read %d (%v): %s %s = %v online, want %v", i, at, u, f, got[fi], want[fi])
				}
			}
			served[fmt.Sprint(u, at.UnixMicro())] = got
		}
	}

	// Served over HTTP in Feast's format, too.
	overHTTP := getOnlineFeatures(t, api, "user_id", []string{"u0", "nobody"},
		"main.features.user_activity:last_platform", "main.features.user_activity:events_1d")
	if len(overHTTP) != 3 || overHTTP[1].Statuses[0] != "PRESENT" || overHTTP[1].Statuses[1] != "NOT_FOUND" || overHTTP[2].Values[1] != nil {
		t.Fatalf("HTTP response %+v", overHTTP)
	}
	if want := activityOracle(evs, "u0", now)[3]; overHTTP[1].Values[0] != want {
		t.Fatalf("HTTP last_platform %v, want %v", overHTTP[1].Values[0], want)
	}

	// The training set: one label per (user, read time), plus times
	// before any event and between events.
	labels := filepath.Join(t.TempDir(), "labels.parquet")
	lsc := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	}, nil)
	lb := array.NewRecordBuilder(memory.DefaultAllocator, lsc)
	type label struct {
		user string
		at   time.Time
	}
	var ls []label
	for _, at := range readTimes {
		for _, u := range users {
			ls = append(ls, label{u, at})
		}
	}
	for range 60 {
		ls = append(ls, label{users[rng.IntN(len(users))], now.Add(-time.Duration(rng.IntN(int(28*time.Hour/time.Second))) * time.Second)})
	}
	for _, l := range ls {
		lb.Field(0).(*array.StringBuilder).Append(l.user)
		lb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(l.at.UnixMicro()))
	}
	lrec := lb.NewRecordBatch()
	lb.Release()
	writeParquet(t, labels, lrec)
	lrec.Release()
	svc := feature.New(n.Tables, n.Catalog, nil, feature.Options{})
	plan, err := svc.Plan(ctx, feature.Spec{Labels: labels, TimestampColumn: "event_timestamp",
		Lookups: []feature.Lookup{{Table: name.String(), LookupKey: feature.Strings{"user_id"}, Features: features}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	row := 0
	for res.Next() {
		rec := res.RecordBatch()
		for i := range int(rec.NumRows()) {
			l := ls[row]
			row++
			got := make([]any, len(features))
			for fi, fname := range features {
				col := rec.Column(rec.Schema().FieldIndices(fname)[0])
				if col.IsNull(i) {
					continue
				}
				switch c := col.(type) {
				case *array.Int64:
					got[fi] = c.Value(i)
				case *array.Float64:
					got[fi] = c.Value(i)
				case *array.String:
					got[fi] = c.Value(i)
				}
			}
			want := activityOracle(evs, l.user, l.at)
			for fi, fname := range features {
				if !sameFeature(got[fi], want[fi]) {
					t.Errorf("training set row %d (%s at %v): %s = %v, want %v", row-1, l.user, l.at, fname, got[fi], want[fi])
				}
			}
			if s, ok := served[fmt.Sprint(l.user, l.at.UnixMicro())]; ok {
				for fi, fname := range features {
					if !sameFeature(got[fi], s[fi]) {
						t.Errorf("parity: %s at %v: %s = %v in the training set, %v served", l.user, l.at, fname, got[fi], s[fi])
					}
				}
			}
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if row != len(ls) {
		t.Fatalf("%d training rows for %d labels", row, len(ls))
	}
}

// yamlToJSON parses a windowed feature spec as the CLI does and returns
// what the CLI sends.
func yamlToJSON(t *testing.T, spec string) any {
	t.Helper()
	s, err := window.ParseSpec([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return json.RawMessage(b)
}
