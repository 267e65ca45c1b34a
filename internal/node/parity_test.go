package node_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sluice-dev/sluice/internal/feature"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/node"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/publish"
	"github.com/sluice-dev/sluice/internal/table"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// TestOnlineOfflineParity checks sluice's central promise on randomized
// event streams: for any entity and time, the value served online equals
// the value a training set holds for that entity at that time. Events
// arrive in chunks, some late (out of event-time order) and some tying an
// earlier event's key and time (the row written last wins, online and in
// training sets); after each chunk is committed and
// synced, the online store is read "at" a time t (at or after the last
// event, sometimes past the TTL). A training set is then built with one
// label row per (entity, t), over the same feature table, and each value
// and each miss (expired or never seen) must be identical.
//
// It runs with each online store (onlineStores), a fresh one per seed.
func TestOnlineOfflineParity(t *testing.T) {
	for name, store := range onlineStores {
		t.Run(name, func(t *testing.T) {
			for seed := uint64(1); seed <= 3; seed++ {
				t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { parity(t, store(t), seed) })
			}
		})
	}
}

// parity is one run of TestOnlineOfflineParity with the online store url
// (see onlineStores).
func parity(t *testing.T, url string, seed uint64) {
	n := startOnlineNode(t, url)
	ctx := sluicetest.Context(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	const ttl = 30 * time.Minute
	name, _ := ident.Parse("main.parity.user_features")
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "revenue", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "platform", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	tbl, err := n.Tables.Create(ctx, name, sc, table.CreateOptions{Properties: map[string]string{
		publish.PropPrimaryKey: "user_id,ts", publish.PropTimeKey: "ts", publish.PropTTL: "30m",
	}})
	if err != nil {
		t.Fatal(err)
	}
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	platforms := []string{"ios", "android", "web"}
	// Event times start now, not at a fixed date: Redis expires a row at
	// its event time + TTL + an hour by its own clock (online.Redis), so
	// rows dated in the past would be gone before the reads "at" their
	// time. Only differences of times matter to the test.
	clock := time.Now().UTC().Truncate(time.Second)

	type obs struct {
		user  string
		at    time.Time
		value string // "revenue/platform", or "-" for no value
	}
	var served []obs
	type event struct {
		user, platform string
		at             time.Time
		revenue        float64
	}
	var events []event
	lastRead, firstSinceRead := clock, 0 // the last read, and the first event after it
	ties, late := 0, 0
	for chunk := range 12 {
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		for range 1 + rng.IntN(15) {
			ev := event{user: users[rng.IntN(len(users))], revenue: float64(rng.IntN(10000)) / 100}
			// Events may come late, out of event-time order, and tie,
			// but none happened before the last read: what the online
			// store served at a time is all that had happened by then.
			switch r := rng.IntN(10); {
			case r == 0 && len(events) > firstSinceRead:
				// A tie: another row for the time of an event since
				// the last read, written later, which wins in both.
				e := events[firstSinceRead+rng.IntN(len(events)-firstSinceRead)]
				ev.user, ev.at = e.user, e.at
				ties++
			case r <= 3 && clock.After(lastRead):
				// A late event: before rows already synced, after the
				// last read.
				ev.at = lastRead.Add(time.Duration(1+rng.Int64N(int64(clock.Sub(lastRead))/1e6)) * time.Millisecond)
				late++
			default:
				clock = clock.Add(time.Duration(1+rng.IntN(600)) * time.Second)
				ev.at = clock
			}
			b.Field(0).(*array.StringBuilder).Append(ev.user)
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ev.at.UnixMicro()))
			b.Field(2).(*array.Float64Builder).Append(ev.revenue)
			if rng.IntN(10) == 0 {
				b.Field(3).AppendNull()
			} else {
				ev.platform = platforms[rng.IntN(len(platforms))]
				b.Field(3).(*array.StringBuilder).Append(ev.platform)
			}
			events = append(events, ev)
		}
		rec := b.NewRecordBatch()
		b.Release()
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
			t.Fatal(err)
		}

		st, err := n.Publisher.Sync(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Rows != rec.NumRows() {
			t.Fatalf("chunk %d: appended %d rows, synced %d", chunk, rec.NumRows(), st.Rows)
		}
		rec.Release()
		// Read everyone at a time at or after the last event, sometimes
		// beyond the TTL of what came before.
		at := clock.Add(time.Duration(rng.IntN(int(45*time.Minute/time.Second))) * time.Second)
		if chunk%4 == 0 {
			at = clock // exactly at the last event
		}
		keys := make([]online.Key, len(users))
		for i, u := range users {
			keys[i] = online.Key{online.String(u)}
		}
		res, err := n.Online.Get(ctx, online.Table{Name: name.String(), TTL: ttl}, keys, []string{"revenue", "platform"}, at)
		if err != nil {
			t.Fatal(err)
		}
		// Time moves on to the read: later events happen after it, as
		// they would in production (online serves what has happened).
		clock, lastRead, firstSinceRead = at, at, len(events)
		for i, u := range users {
			v := "-"
			if r := res[i]; r.Statuses[0] == online.Present {
				v = fmt.Sprintf("%v/%s", r.Values[0].Float64(), r.Values[1].Str())
			}
			served = append(served, obs{u, at, v})
		}
	}

	// The training set: one label per (user, read time).
	lsc := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "label", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	lb := array.NewRecordBuilder(memory.DefaultAllocator, lsc)
	for i, o := range served {
		lb.Field(0).(*array.StringBuilder).Append(o.user)
		lb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(o.at.UnixMicro()))
		lb.Field(2).(*array.Int64Builder).Append(int64(i))
	}
	lrec := lb.NewRecordBatch()
	lb.Release()
	defer lrec.Release()
	offline := make([]string, len(served))
	got := 0
	trainingSet(t, n, lrec, "label", []feature.Lookup{{Table: name.String(), LookupKey: feature.Strings{"user_id"}, Features: []string{"revenue", "platform"}}},
		func(rec arrow.RecordBatch) {
			label := rec.Column(rec.Schema().FieldIndices("label")[0]).(*array.Int64)
			rev := rec.Column(rec.Schema().FieldIndices("revenue")[0]).(*array.Float64)
			plat := rec.Column(rec.Schema().FieldIndices("platform")[0]).(*array.String)
			for i := 0; i < int(rec.NumRows()); i++ {
				v := "-"
				if rev.IsValid(i) {
					p := ""
					if plat.IsValid(i) {
						p = plat.Value(i)
					}
					v = fmt.Sprintf("%v/%s", rev.Value(i), p)
				}
				offline[label.Value(i)] = v
				got++
			}
		})
	if got != len(served) {
		t.Fatalf("the training set has %d rows for %d labels", got, len(served))
	}
	// A brute-force oracle, to say which side is wrong on a mismatch: the
	// user's newest event at or before at (of equal times, the one
	// written last), if within the TTL.
	truth := func(user string, at time.Time) string {
		best := -1
		for i, e := range events {
			if e.user == user && !e.at.After(at) && (best < 0 || !e.at.Before(events[best].at)) {
				best = i
			}
		}
		if best < 0 || at.Sub(events[best].at) > ttl {
			return "-"
		}
		return fmt.Sprintf("%v/%s", events[best].revenue, events[best].platform)
	}
	present, missing := 0, 0
	for i, o := range served {
		if want := truth(o.user, o.at); offline[i] != want || o.value != want {
			t.Errorf("%s at %s: online served %s, the training set holds %s, the oracle says %s", o.user, o.at.Format(time.RFC3339), o.value, offline[i], truth(o.user, o.at))
		}
		if o.value == "-" {
			missing++
		} else {
			present++
		}
	}
	if present == 0 || missing == 0 {
		t.Fatalf("a weak run: %d present and %d missing values", present, missing)
	}
	t.Logf("%d reads compared: %d values, %d misses (expired or unseen); %d events, %d late, %d ties", len(served), present, missing, len(events), late, ties)
}

// trainingSet writes labels to a Parquet file, builds a training set over
// n's tables from it (label may be ""), and calls each with every record
// batch of the result.
func trainingSet(t *testing.T, n *node.Node, labels arrow.RecordBatch, label string, lookups []feature.Lookup, each func(arrow.RecordBatch)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "labels.parquet")
	writeParquet(t, path, labels)
	svc := feature.New(n.Tables, n.Catalog, nil, feature.Options{})
	plan, err := svc.Plan(sluicetest.Context(t), feature.Spec{Labels: path, TimestampColumn: "event_timestamp", Label: label, Lookups: lookups})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Run(sluicetest.Context(t), plan)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	for res.Next() {
		each(res.RecordBatch())
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
}

// writeParquet writes rec to a new Parquet file at path.
func writeParquet(t *testing.T, path string, rec arrow.RecordBatch) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
