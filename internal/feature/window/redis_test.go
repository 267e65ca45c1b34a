package window_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/feature/window"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// TestFoldRedisMatchesEmbedded folds the same events, in the same batches
// (with replays), into the Redis store and the embedded one, and reads
// both at the wall clock: the values must be identical (the embedded
// store's are checked against the oracle by TestFoldEmbedded).
func TestFoldRedisMatchesEmbedded(t *testing.T) {
	ctx := context.Background()
	def, err := window.ParseDef(`{"keys":["user_id"],"timestamp":"ts","features":[
		{"name":"n_1m","function":"count","window":"1m"},
		{"name":"sum_1h","function":"sum","window":"1h"},
		{"name":"avg_1d","function":"avg","window":"1d"},
		{"name":"min_1h","function":"min","window":"1h"},
		{"name":"max_1d","function":"max","window":"1d"},
		{"name":"kinds_1h","function":"count_distinct","window":"1h"},
		{"name":"last_1h","function":"last","window":"1h"},
		{"name":"last","function":"last"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	red, err := online.OpenRedis(ctx, nil, online.RedisOptions{URL: sluicetest.RedisServer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer red.Close()
	emb, err := online.OpenEmbedded(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()

	rng := rand.New(rand.NewPCG(3, 9))
	now := time.Now()
	var evs []window.Event
	for i := range 600 {
		in := make([]online.Value, len(def.Features))
		for j := range in {
			switch {
			case rng.IntN(8) == 0:
			case j == 0:
				in[j] = online.Int64(1)
			case j == 5 || j >= 6:
				in[j] = online.String(fmt.Sprint("k", rng.IntN(6)))
			default:
				in[j] = online.Float64(float64(rng.IntN(1000)) / 8)
			}
		}
		ts := now.Add(-time.Duration(rng.Int64N(int64(30 * time.Hour)))).UnixMicro()
		if i > 500 {
			ts = now.Add(-time.Duration(rng.Int64N(int64(2 * time.Minute)))).UnixMicro()
		}
		evs = append(evs, window.Event{Key: online.Key{online.String(fmt.Sprint("u", rng.IntN(5)))}, TS: ts,
			Pos: window.Pos{Seq: int64(i)}, Inputs: in})
	}
	for _, s := range []online.Store{red, emb} {
		for i := 0; i < len(evs); {
			j := min(len(evs), i+1+rng.IntN(70))
			if err := def.Fold(ctx, s, "main.f.t", 0, evs[i:j], now); err != nil {
				t.Fatal(err)
			}
			if i > 0 && rng.IntN(3) == 0 {
				if err := def.Fold(ctx, s, "main.f.t", 0, evs[max(0, i-30):j], now); err != nil {
					t.Fatal(err)
				}
			}
			i = j
		}
	}
	keys := []online.Key{{online.String("u0")}, {online.String("u1")}, {online.String("u2")}, {online.String("u3")}, {online.String("u4")}, {online.String("nobody")}}
	all := make([]int, len(def.Features))
	for i := range all {
		all[i] = i
	}
	at := time.Now()
	r1, err := def.Read(ctx, red, "main.f.t", 0, keys, all, at)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := def.Read(ctx, emb, "main.f.t", 0, keys, all, at)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		if r1[k].Found != r2[k].Found {
			t.Fatalf("%v: found %v in Redis, %v embedded", keys[k], r1[k].Found, r2[k].Found)
		}
		for f, fd := range def.Features {
			if !r1[k].Values[f].Equal(r2[k].Values[f]) || r1[k].Statuses[f] != r2[k].Statuses[f] {
				t.Errorf("%v %s: Redis %v (%v), embedded %v (%v)", keys[k], fd.Name, r1[k].Values[f], r1[k].Statuses[f], r2[k].Values[f], r2[k].Statuses[f])
			}
		}
	}
	if r1[0].Values[0].Int64() == 0 && r1[1].Values[0].Int64() == 0 {
		t.Fatalf("no recent events counted: %v %v", r1[0].Values, r1[1].Values)
	}
}
