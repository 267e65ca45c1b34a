package online_test

import (
	"context"
	"errors"
	"fmt"
	. "github.com/sluice-dev/sluice/internal/online"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// The conformance suite: every Store passes it. open returns a fresh, empty
// store that the test's cleanup closes.

// t0 is near the wall clock: Redis expires rows by it (see
// [RedisOptions.ExpireGrace]).
var t0 = time.Now().UTC().Truncate(time.Second)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

var userTable = Table{Name: "main.features.user_activity"}

func row(key string, ts int, version uint64, kv ...any) Row {
	r := Row{Key: Key{String(key)}, EventTime: at(ts), Version: version}
	for i := 0; i < len(kv); i += 2 {
		r.Names = append(r.Names, kv[i].(string))
		r.Values = append(r.Values, kv[i+1].(Value))
	}
	return r
}

func mustWrite(t *testing.T, s Store, tb Table, rows ...Row) {
	t.Helper()
	if err := s.Write(context.Background(), tb, rows); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func mustGet(t *testing.T, s Store, tb Table, keys []Key, features []string, now time.Time) []Result {
	t.Helper()
	res, err := s.Get(context.Background(), tb, keys, features, now)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(res) != len(keys) {
		t.Fatalf("Get returned %d results for %d keys", len(res), len(keys))
	}
	for i, r := range res {
		if len(r.Values) != len(features) || len(r.Statuses) != len(features) {
			t.Fatalf("result %d: %d values, %d statuses for %d features", i, len(r.Values), len(r.Statuses), len(features))
		}
	}
	return res
}

// feat is one expected feature: its status and value.
type feat struct {
	status Status
	value  Value
}

func present(v Value) feat { return feat{Present, v} }

var notFound = feat{NotFound, Null()}

func checkResult(t *testing.T, what string, got Result, wantTS int, want ...feat) {
	t.Helper()
	if wantTS < 0 {
		if got.Found || !got.EventTime.IsZero() {
			t.Errorf("%s: found (event time %v), want not found", what, got.EventTime)
		}
	} else if !got.Found || !got.EventTime.Equal(at(wantTS)) {
		t.Errorf("%s: found %v at %v, want found at %v", what, got.Found, got.EventTime, at(wantTS))
	}
	for i, w := range want {
		if got.Statuses[i] != w.status || !got.Values[i].Equal(w.value) {
			t.Errorf("%s: feature %d = %v %v, want %v %v", what, i, got.Statuses[i], got.Values[i], w.status, w.value)
		}
	}
}

func runConformance(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	t.Run("Blobs", func(t *testing.T) { runBlobConformance(t, open) })
	k := func(s string) Key { return Key{String(s)} }

	t.Run("NewerWins", func(t *testing.T) {
		s := open(t)
		mustWrite(t, s, userTable, row("u1", 20, 0, "clicks", Int64(2)))
		mustWrite(t, s, userTable, row("u1", 10, 0, "clicks", Int64(1))) // older: ignored
		res := mustGet(t, s, userTable, []Key{k("u1")}, []string{"clicks"}, at(30))
		checkResult(t, "after older write", res[0], 20, present(Int64(2)))
		mustWrite(t, s, userTable, row("u1", 25, 0, "clicks", Int64(3)))
		res = mustGet(t, s, userTable, []Key{k("u1")}, []string{"clicks"}, at(30))
		checkResult(t, "after newer write", res[0], 25, present(Int64(3)))
		// Replaying everything changes nothing.
		mustWrite(t, s, userTable, row("u1", 10, 0, "clicks", Int64(1)), row("u1", 20, 0, "clicks", Int64(2)))
		res = mustGet(t, s, userTable, []Key{k("u1")}, []string{"clicks"}, at(30))
		checkResult(t, "after replay", res[0], 25, present(Int64(3)))
	})

	t.Run("EqualTimestamps", func(t *testing.T) {
		s := open(t)
		// Equal event time: the larger version wins, whatever the order.
		mustWrite(t, s, userTable, row("u1", 10, 7, "clicks", Int64(7)))
		mustWrite(t, s, userTable, row("u1", 10, 3, "clicks", Int64(3)))
		res := mustGet(t, s, userTable, []Key{k("u1")}, []string{"clicks"}, at(10))
		checkResult(t, "lower version after higher", res[0], 10, present(Int64(7)))
		if res[0].Version != 7 {
			t.Errorf("version %d, want 7", res[0].Version)
		}
		mustWrite(t, s, userTable, row("u1", 10, 9, "clicks", Int64(9)))
		res = mustGet(t, s, userTable, []Key{k("u1")}, []string{"clicks"}, at(10))
		checkResult(t, "higher version", res[0], 10, present(Int64(9)))
		// Equal event time and version: the last write wins.
		mustWrite(t, s, userTable, row("u1", 10, 9, "clicks", Int64(90)))
		res = mustGet(t, s, userTable, []Key{k("u1")}, []string{"clicks"}, at(10))
		checkResult(t, "equal version", res[0], 10, present(Int64(90)))
		// A newer event time wins over any version.
		mustWrite(t, s, userTable, row("u1", 11, 0, "clicks", Int64(110)))
		res = mustGet(t, s, userTable, []Key{k("u1")}, []string{"clicks"}, at(11))
		checkResult(t, "newer time, lower version", res[0], 11, present(Int64(110)))
	})

	t.Run("SameKeyInOneBatch", func(t *testing.T) {
		s := open(t)
		mustWrite(t, s, userTable,
			row("u1", 5, 0, "c", Int64(5)),
			row("u1", 9, 0, "c", Int64(9)),
			row("u1", 7, 0, "c", Int64(7)),
			row("u2", 3, 0, "c", Int64(1)),
			row("u2", 3, 0, "c", Int64(2)), // tie: later row wins
		)
		res := mustGet(t, s, userTable, []Key{k("u1"), k("u2")}, []string{"c"}, at(10))
		checkResult(t, "u1", res[0], 9, present(Int64(9)))
		checkResult(t, "u2", res[1], 3, present(Int64(2)))
	})

	t.Run("WholeRowReplaced", func(t *testing.T) {
		s := open(t)
		mustWrite(t, s, userTable, row("u1", 1, 0, "a", Int64(1), "b", Int64(2)))
		mustWrite(t, s, userTable, row("u1", 2, 0, "a", Int64(10)))
		res := mustGet(t, s, userTable, []Key{k("u1")}, []string{"a", "b"}, at(2))
		checkResult(t, "u1", res[0], 2, present(Int64(10)), notFound)
	})

	t.Run("Kinds", func(t *testing.T) {
		s := open(t)
		vals := map[string]Value{
			"null": Null(), "true": Bool(true), "false": Bool(false),
			"int": Int64(-42), "maxint": Int64(math.MaxInt64), "minint": Int64(math.MinInt64),
			"float": Float64(-1.5), "negzero": Float64(math.Copysign(0, -1)), "nan": Float64(math.NaN()),
			"inf": Float64(math.Inf(-1)), "str": String("héllo\x00\xff"), "empty": String(""),
			"ts": Timestamp(time.Date(1999, 12, 31, 23, 59, 59, 123456789, time.UTC)), "ts0": TimestampNanos(0),
			"tsneg": TimestampNanos(-1),
		}
		r := Row{Key: k("u1"), EventTime: at(0)}
		for n, v := range vals {
			r.Names = append(r.Names, n)
			r.Values = append(r.Values, v)
		}
		mustWrite(t, s, userTable, r)
		res := mustGet(t, s, userTable, []Key{k("u1")}, r.Names, at(0))
		for i, n := range r.Names {
			want := present(vals[n])
			if vals[n].IsNull() {
				want = feat{NullValue, Null()}
			}
			if got := (feat{res[0].Statuses[i], res[0].Values[i]}); got != want {
				t.Errorf("%s: got %v %v, want %v %v", n, got.status, got.value, want.status, want.value)
			}
		}
	})

	t.Run("Keys", func(t *testing.T) {
		s := open(t)
		keys := []Key{
			{String("5")}, {Int64(5)}, {Float64(5)}, {TimestampNanos(5)}, {Bool(true)}, {Null()},
			{String("a"), Int64(1)}, {String("a"), Int64(2)}, {Int64(1), String("a")},
			{String(""), String("ab")}, {String("a"), String("b")}, {String("ab"), String("")},
			{Int64(-1)}, {Float64(math.NaN())},
		}
		rows := make([]Row, len(keys))
		for i, key := range keys {
			rows[i] = Row{Key: key, EventTime: at(0), Names: []string{"i"}, Values: []Value{Int64(int64(i))}}
		}
		mustWrite(t, s, userTable, rows...)
		res := mustGet(t, s, userTable, keys, []string{"i"}, at(0))
		for i := range keys {
			checkResult(t, fmt.Sprint(keys[i]), res[i], 0, present(Int64(int64(i))))
		}
		// Float keys are canonical: -0 is 0, every NaN is one NaN.
		mustWrite(t, s, userTable, Row{Key: Key{Float64(0)}, EventTime: at(0), Names: []string{"i"}, Values: []Value{Int64(100)}})
		res = mustGet(t, s, userTable, []Key{{Float64(math.Copysign(0, -1))}, {Float64(math.Float64frombits(0x7ff8000000000abc))}}, []string{"i"}, at(0))
		checkResult(t, "-0", res[0], 0, present(Int64(100)))
		checkResult(t, "other NaN", res[1], 0, present(Int64(int64(len(keys)-1))))
	})

	t.Run("MissingAndUnknown", func(t *testing.T) {
		s := open(t)
		mustWrite(t, s, userTable, row("u1", 1, 0, "a", Int64(1), "n", Null()))
		feats := []string{"a", "nope", "n", "a"}
		res := mustGet(t, s, userTable, []Key{k("missing"), k("u1"), k("u1"), {}}, feats, at(1))
		checkResult(t, "missing", res[0], -1, notFound, notFound, notFound, notFound)
		checkResult(t, "u1", res[1], 1, present(Int64(1)), notFound, feat{NullValue, Null()}, present(Int64(1)))
		checkResult(t, "u1 again", res[2], 1, present(Int64(1)), notFound, feat{NullValue, Null()}, present(Int64(1)))
		checkResult(t, "empty key", res[3], -1, notFound, notFound, notFound, notFound)
		// An unknown table is empty, not an error.
		res = mustGet(t, s, Table{Name: "no.such.table"}, []Key{k("u1")}, feats, at(1))
		checkResult(t, "unknown table", res[0], -1, notFound, notFound, notFound, notFound)
		// No keys, no features.
		if res := mustGet(t, s, userTable, nil, feats, at(1)); len(res) != 0 {
			t.Errorf("no keys: %d results", len(res))
		}
		res = mustGet(t, s, userTable, []Key{k("u1")}, nil, at(1))
		checkResult(t, "no features", res[0], 1)
	})

	t.Run("ManyFeatures", func(t *testing.T) {
		s := open(t)
		r := Row{Key: k("u1"), EventTime: at(0)}
		for i := range 600 {
			r.Names = append(r.Names, fmt.Sprintf("f%03d", i))
			r.Values = append(r.Values, Int64(int64(i)))
		}
		mustWrite(t, s, userTable, r)
		feats := append([]string{"f599", "zzz", "f000"}, r.Names...)
		feats = append(feats, "f599")
		res := mustGet(t, s, userTable, []Key{k("u1")}, feats, at(0))
		want := []feat{present(Int64(599)), notFound, present(Int64(0))}
		for i := range r.Names {
			want = append(want, present(Int64(int64(i))))
		}
		want = append(want, present(Int64(599)))
		checkResult(t, "u1", res[0], 0, want...)
	})

	t.Run("TTL", func(t *testing.T) {
		s := open(t)
		tb := Table{Name: "main.features.ttl", TTL: time.Minute}
		mustWrite(t, s, tb, row("u1", 0, 0, "a", Int64(1), "n", Null()), row("u2", 100, 0, "a", Int64(2)))
		keys := []Key{k("u1"), k("u2")}
		feats := []string{"a", "n", "nope"}
		res := mustGet(t, s, tb, keys, feats, at(60)) // age == TTL: still valid
		checkResult(t, "u1 at TTL", res[0], 0, present(Int64(1)), feat{NullValue, Null()}, notFound)
		checkResult(t, "u2 before its event time", res[1], 100, present(Int64(2)), notFound, notFound)
		res = mustGet(t, s, tb, keys, feats, at(61))
		checkResult(t, "u1 past TTL", res[0], 0, feat{OutsideMaxAge, Null()}, feat{OutsideMaxAge, Null()}, notFound)
		checkResult(t, "u2", res[1], 100, present(Int64(2)), notFound, notFound)
		// The same rows without a TTL never expire.
		res = mustGet(t, s, Table{Name: tb.Name}, keys, feats, at(1e6))
		checkResult(t, "no TTL", res[0], 0, present(Int64(1)), feat{NullValue, Null()}, notFound)
		// A newer write refreshes the row.
		mustWrite(t, s, tb, row("u1", 50, 0, "a", Int64(3)))
		res = mustGet(t, s, tb, keys, feats, at(100))
		checkResult(t, "u1 refreshed", res[0], 50, present(Int64(3)), notFound, notFound)
	})

	t.Run("TablesAreSeparate", func(t *testing.T) {
		s := open(t)
		a, ab := Table{Name: "a"}, Table{Name: "ab"}
		mustWrite(t, s, a, row("b", 1, 0, "x", String("in a")))
		mustWrite(t, s, ab, row("", 1, 0, "x", String("in ab")))
		res := mustGet(t, s, a, []Key{k("b"), k("")}, []string{"x"}, at(1))
		checkResult(t, "a/b", res[0], 1, present(String("in a")))
		checkResult(t, "a/''", res[1], -1, notFound)
		res = mustGet(t, s, ab, []Key{k("b"), k("")}, []string{"x"}, at(1))
		checkResult(t, "ab/b", res[0], -1, notFound)
		checkResult(t, "ab/''", res[1], 1, present(String("in ab")))
	})

	t.Run("DeleteTable", func(t *testing.T) {
		s := open(t)
		other := Table{Name: "main.features.user_activity_2"}
		glob := Table{Name: "we*ird?[x]\\"}
		var rows []Row
		for i := range 2500 {
			rows = append(rows, row(fmt.Sprint("u", i), 10, 0, "a", Int64(int64(i))))
		}
		mustWrite(t, s, userTable, rows...)
		mustWrite(t, s, other, rows[:3]...)
		mustWrite(t, s, glob, rows[:3]...)
		if err := s.DeleteTable(ctx, userTable.Name); err != nil {
			t.Fatalf("DeleteTable: %v", err)
		}
		if err := s.DeleteTable(ctx, "we*"); err != nil { // matches nothing: names are exact
			t.Fatalf("DeleteTable: %v", err)
		}
		keys := []Key{k("u0"), k("u1"), k("u2499")}
		res := mustGet(t, s, userTable, keys, []string{"a"}, at(10))
		for i := range res {
			checkResult(t, "deleted", res[i], -1, notFound)
		}
		res = mustGet(t, s, other, keys[:2], []string{"a"}, at(10))
		checkResult(t, "other table", res[1], 10, present(Int64(1)))
		res = mustGet(t, s, glob, keys[:2], []string{"a"}, at(10))
		checkResult(t, "glob table", res[1], 10, present(Int64(1)))
		// The table starts afresh: an older row than the deleted one is written.
		mustWrite(t, s, userTable, row("u1", 5, 0, "a", Int64(-1)))
		res = mustGet(t, s, userTable, keys, []string{"a"}, at(10))
		checkResult(t, "rewritten", res[1], 5, present(Int64(-1)))
		checkResult(t, "still deleted", res[0], -1, notFound)
		if err := s.DeleteTable(ctx, glob.Name); err != nil {
			t.Fatalf("DeleteTable: %v", err)
		}
		res = mustGet(t, s, glob, keys[:2], []string{"a"}, at(10))
		checkResult(t, "glob table deleted", res[1], -1, notFound)
		res = mustGet(t, s, other, keys[:2], []string{"a"}, at(10))
		checkResult(t, "other table kept", res[1], 10, present(Int64(1)))
	})

	t.Run("BatchRead", func(t *testing.T) {
		s := open(t)
		var rows []Row
		for i := 0; i < 1000; i += 2 {
			rows = append(rows, row(fmt.Sprint("u", i), i, 0, "i", Int64(int64(i)), "s", String(fmt.Sprint(i))))
		}
		mustWrite(t, s, userTable, rows...)
		var keys []Key
		for i := 999; i >= 0; i-- {
			keys = append(keys, k(fmt.Sprint("u", i)))
		}
		res := mustGet(t, s, userTable, keys, []string{"s", "i"}, at(1000))
		for j, r := range res {
			i := 999 - j
			if i%2 == 1 {
				checkResult(t, fmt.Sprint("u", i), r, -1, notFound, notFound)
			} else {
				checkResult(t, fmt.Sprint("u", i), r, i, present(String(fmt.Sprint(i))), present(Int64(int64(i))))
			}
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		s := open(t)
		const writers, perWriter, nkeys = 4, 200, 8
		// Every (key, time) is written by exactly one writer, in random
		// order; the value is the time. The end state holds each key's
		// largest time.
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for range perWriter / 4 {
					batch := make([]Row, 4)
					for j := range batch {
						ts := rng.IntN(10000)*writers + w
						batch[j] = row(fmt.Sprint("k", rng.IntN(nkeys)), ts, 0, "t", Int64(int64(ts)))
					}
					if err := s.Write(ctx, userTable, batch); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// Recompute the expected maxima with the same generators.
		want := make(map[string]int)
		for w := range writers {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range perWriter {
				ts := rng.IntN(10000)*writers + w
				key := fmt.Sprint("k", rng.IntN(nkeys))
				if cur, ok := want[key]; !ok || ts > cur {
					want[key] = ts
				}
			}
		}
		for key, ts := range want {
			res := mustGet(t, s, userTable, []Key{k(key)}, []string{"t"}, at(ts))
			checkResult(t, key, res[0], ts, present(Int64(int64(ts))))
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		s := open(t)
		cases := map[string]struct {
			table Table
			rows  []Row
		}{
			"empty table":      {Table{}, []Row{row("u1", 1, 0, "a", Int64(1))}},
			"empty key":        {userTable, []Row{{EventTime: at(1)}}},
			"names and values": {userTable, []Row{{Key: k("u"), EventTime: at(1), Names: []string{"a"}}}},
			"empty name":       {userTable, []Row{row("u1", 1, 0, "", Int64(1))}},
			"duplicate name":   {userTable, []Row{row("u1", 1, 0, "a", Int64(1), "a", Int64(2))}},
			"zero event time":  {userTable, []Row{{Key: k("u"), Names: []string{"a"}, Values: []Value{Int64(1)}}}},
			"bad kind":         {userTable, []Row{row("u1", 1, 0, "a", BadValue)}},
			"second row bad":   {userTable, []Row{row("u2", 1, 0, "a", Int64(1)), row("u1", 1, 0, "", Int64(1))}},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				if err := s.Write(ctx, c.table, c.rows); !errors.Is(err, ErrInvalid) {
					t.Fatalf("Write: %v, want ErrInvalid", err)
				}
			})
		}
		// Nothing of a rejected batch was written.
		res := mustGet(t, s, userTable, []Key{k("u2")}, []string{"a"}, at(1))
		checkResult(t, "u2", res[0], -1, notFound)
		if _, err := s.Get(ctx, Table{}, []Key{k("u")}, nil, at(1)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Get of empty table name: %v, want ErrInvalid", err)
		}
		if err := s.DeleteTable(ctx, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("DeleteTable of empty table name: %v, want ErrInvalid", err)
		}
	})

	t.Run("Closed", func(t *testing.T) {
		s := open(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, userTable, []Row{row("u1", 1, 0, "a", Int64(1))}); !errors.Is(err, ErrClosed) {
			t.Errorf("Write: %v, want ErrClosed", err)
		}
		if _, err := s.Get(ctx, userTable, []Key{k("u1")}, nil, at(1)); !errors.Is(err, ErrClosed) {
			t.Errorf("Get: %v, want ErrClosed", err)
		}
		if err := s.DeleteTable(ctx, "t"); !errors.Is(err, ErrClosed) {
			t.Errorf("DeleteTable: %v, want ErrClosed", err)
		}
		if err := s.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("second Close: %v, want ErrClosed", err)
		}
	})
}
