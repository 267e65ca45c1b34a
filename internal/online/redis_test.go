package online_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	. "github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

func openRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	s, err := OpenRedis(sluicetest.Context(t), nil, opts)
	if err != nil {
		t.Fatalf("OpenRedis: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestRedisConformance(t *testing.T) {
	url := sluicetest.RedisServer(t)
	n := 0
	// Each store gets its own prefix in the one server, so that tests do
	// not see each other's rows.
	runConformance(t, func(t *testing.T) Store {
		n++
		return openRedis(t, RedisOptions{URL: url, Prefix: "test" + string(rune('a'+n%26)) + string(rune('a'+n/26)) + ":"})
	})
}

func TestRedisConformanceClientCache(t *testing.T) {
	url := sluicetest.RedisServer(t)
	n := 0
	runConformance(t, func(t *testing.T) Store {
		n++
		prefix := "cache" + string(rune('a'+n%26)) + string(rune('a'+n/26)) + ":"
		return &settling{
			Store: openRedis(t, RedisOptions{URL: url, ClientCache: time.Minute, Prefix: prefix}),
			truth: openRedis(t, RedisOptions{URL: url, Prefix: prefix}),
			t:     t,
			keys:  make(map[string]map[string]Key),
			names: make(map[string]map[string]bool),
		}
	})
}

// settling wraps a store with a client-side cache, whose reads see writes
// (its own included) once Redis's invalidations arrive, typically within a
// round trip. After each write or delete it waits until cached reads of
// every key it wrote agree with uncached ones, so that the conformance
// suite's read-after-write checks apply.
type settling struct {
	Store
	truth Store
	t     *testing.T
	mu    sync.Mutex
	keys  map[string]map[string]Key // table -> keys written
	names map[string]map[string]bool
}

func (s *settling) Write(ctx context.Context, tb Table, rows []Row) error {
	s.mu.Lock()
	if s.keys[tb.Name] == nil {
		s.keys[tb.Name], s.names[tb.Name] = make(map[string]Key), make(map[string]bool)
	}
	for _, r := range rows {
		s.keys[tb.Name][fmt.Sprint(r.Key)] = r.Key
		for _, n := range r.Names {
			s.names[tb.Name][n] = true
		}
	}
	s.mu.Unlock()
	if err := s.Store.Write(ctx, tb, rows); err != nil {
		return err
	}
	return s.settle(ctx, tb.Name)
}

func (s *settling) DeleteTable(ctx context.Context, table string) error {
	if err := s.Store.DeleteTable(ctx, table); err != nil {
		return err
	}
	return s.settle(ctx, table)
}

func (s *settling) settle(ctx context.Context, table string) error {
	s.mu.Lock()
	var keys []Key
	for _, k := range s.keys[table] {
		keys = append(keys, k)
	}
	var names []string
	for n := range s.names[table] {
		names = append(names, n)
	}
	s.mu.Unlock()
	tb := Table{Name: table}
	deadline := time.Now().Add(5 * time.Second)
	for {
		cached, err := s.Store.Get(ctx, tb, keys, names, time.Time{})
		if err != nil {
			return err
		}
		truth, err := s.truth.Get(ctx, tb, keys, names, time.Time{})
		if err != nil {
			return err
		}
		if reflect.DeepEqual(cached, truth) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("client cache of %s did not settle in 5s", table)
		}
		time.Sleep(time.Millisecond)
	}
}

func rawRedis(t *testing.T, url string) rueidis.Client {
	t.Helper()
	o, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.DisableCache = true
	c, err := rueidis.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestRedisSharedStore checks the newer-wins rule and cache invalidation
// across two clients of one Redis, as two sluice instances would use it.
func TestRedisSharedStore(t *testing.T) {
	url := sluicetest.RedisServer(t)
	a := openRedis(t, RedisOptions{URL: url, ClientCache: time.Minute})
	b := openRedis(t, RedisOptions{URL: url, ClientCache: time.Minute})
	key := []Key{{String("u1")}}
	mustWrite(t, a, userTable, row("u1", 10, 0, "a", Int64(1)))
	checkResult(t, "b reads a's row", mustGet(t, b, userTable, key, []string{"a"}, at(10))[0], 10, present(Int64(1)))
	mustWrite(t, b, userTable, row("u1", 5, 0, "a", Int64(-1)))
	checkResult(t, "a's newer row kept", mustGet(t, a, userTable, key, []string{"a"}, at(10))[0], 10, present(Int64(1)))
	mustWrite(t, a, userTable, row("u1", 11, 0, "a", Int64(2)))
	// b cached the row; Redis invalidates it asynchronously.
	sluicetest.Eventually(t, 5*time.Second, "b sees a's update", func() (bool, string) {
		r := mustGet(t, b, userTable, key, []string{"a"}, at(11))[0]
		return r.Values[0].Equal(Int64(2)), r.Values[0].String()
	})
}

func TestRedisExpiry(t *testing.T) {
	url := sluicetest.RedisServer(t)
	raw := rawRedis(t, url)
	ctx := context.Background()
	for name, c := range map[string]struct {
		grace time.Duration
		ttl   time.Duration
		want  time.Time // zero: no expiry
	}{
		"default grace": {0, time.Minute, at(10).Add(time.Minute + time.Hour)},
		"grace":         {time.Second, time.Minute, at(10).Add(time.Minute + time.Second)},
		"no expiry":     {-1, time.Minute, time.Time{}},
		"no TTL":        {0, 0, time.Time{}},
	} {
		t.Run(name, func(t *testing.T) {
			s := openRedis(t, RedisOptions{URL: url, ExpireGrace: c.grace, Prefix: name + ":"})
			tb := Table{Name: "t", TTL: c.ttl}
			// Event times in the future so that Redis keeps the row.
			r := row("u1", 10, 0, "a", Int64(1))
			r.EventTime = r.EventTime.AddDate(100, 0, 0)
			mustWrite(t, s, tb, r)
			key := RedisRowKey(s, "t", Key{String("u1")})
			ms, err := raw.Do(ctx, raw.B().Pexpiretime().Key(key).Build()).AsInt64()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.want.IsZero() && ms != -1:
				t.Errorf("expiry at %v, want none", time.UnixMilli(ms))
			case !c.want.IsZero() && ms != c.want.AddDate(100, 0, 0).UnixMilli():
				t.Errorf("expiry at %v, want %v", time.UnixMilli(ms).UTC(), c.want.AddDate(100, 0, 0))
			}
		})
	}
	// A row whose expiry has passed is gone: NOT_FOUND.
	s := openRedis(t, RedisOptions{URL: url, ExpireGrace: time.Millisecond, Prefix: "past:"})
	tb := Table{Name: "t", TTL: time.Millisecond}
	r := row("u1", 0, 0, "a", Int64(1))
	r.EventTime = time.Now().Add(-time.Minute)
	mustWrite(t, s, tb, r)
	checkResult(t, "expired", mustGet(t, s, tb, []Key{{String("u1")}}, []string{"a"}, r.EventTime)[0], -1, notFound)
}

// TestRedisScriptFlushed checks that writes survive the server losing its
// script cache (a restart or SCRIPT FLUSH).
func TestRedisScriptFlushed(t *testing.T) {
	url := sluicetest.RedisServer(t)
	raw := rawRedis(t, url)
	s := openRedis(t, RedisOptions{URL: url})
	mustWrite(t, s, userTable, row("u1", 1, 0, "a", Int64(1)))
	if err := raw.Do(context.Background(), raw.B().ScriptFlush().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, userTable, row("u1", 2, 0, "a", Int64(2)), row("u1", 1, 0, "a", Int64(1)))
	checkResult(t, "u1", mustGet(t, s, userTable, []Key{{String("u1")}}, []string{"a"}, at(2))[0], 2, present(Int64(2)))
}

func TestRedisCorrupt(t *testing.T) {
	url := sluicetest.RedisServer(t)
	raw := rawRedis(t, url)
	s := openRedis(t, RedisOptions{URL: url})
	key := RedisRowKey(s, userTable.Name, Key{String("u1")})
	if err := raw.Do(context.Background(), raw.B().Hset().Key(key).FieldValue().FieldValue("", "short").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), userTable, []Key{{String("u1")}}, []string{"a"}, at(0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Get of a corrupt row: %v, want ErrCorrupt", err)
	}
	// A valid row replaces a corrupt one.
	mustWrite(t, s, userTable, row("u1", 1, 0, "a", Int64(1)))
	checkResult(t, "u1", mustGet(t, s, userTable, []Key{{String("u1")}}, []string{"a"}, at(1))[0], 1, present(Int64(1)))
}

func TestRedisOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := OpenRedis(ctx, nil, RedisOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no URL: %v, want ErrInvalid", err)
	}
	if _, err := OpenRedis(ctx, nil, RedisOptions{URL: "http://x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad URL: %v, want ErrInvalid", err)
	}
	port := "1" // nothing listens on port 1
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := OpenRedis(cctx, nil, RedisOptions{URL: "redis://127.0.0.1:" + port}); err == nil {
		t.Error("connecting to a closed port succeeded")
	}
}
