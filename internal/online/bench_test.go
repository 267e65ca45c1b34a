package online_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"syscall"
	"testing"
	"time"

	. "github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// The benchmarks serve one entity × 10 features out of benchEntities, and
// write batches of benchBatch rows of 10 features.
const (
	benchEntities = 100_000
	benchBatch    = 1000
)

var benchNames = func() []string {
	n := make([]string, 10)
	for i := range n {
		n[i] = fmt.Sprintf("feature_%02d", i)
	}
	return n
}()

func benchRow(i int, ts time.Time) Row {
	v := make([]Value, 10)
	for j := range v {
		switch j % 3 {
		case 0:
			v[j] = Int64(int64(i * j))
		case 1:
			v[j] = Float64(float64(i) / 3)
		default:
			v[j] = String(fmt.Sprintf("value-%d", i))
		}
	}
	return Row{Key: Key{String(fmt.Sprintf("user-%07d", i))}, Names: benchNames, Values: v, EventTime: ts}
}

// cpuClock measures the process's CPU time (user + system), a steadier
// measure than wall time on a shared machine. For Redis it leaves out the
// server's CPU.
type cpuClock struct{ start time.Duration }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{cpuNow()} }

func (c cpuClock) report(b *testing.B, perOp int) {
	b.ReportMetric(float64(cpuNow()-c.start)/float64(b.N*perOp), "cpu-ns/"+map[bool]string{true: "op", false: "row"}[perOp == 1])
}

func fill(b *testing.B, s Store, tb Table) {
	b.Helper()
	ts := time.Now()
	rows := make([]Row, 0, benchBatch)
	for i := 0; i < benchEntities; i++ {
		rows = append(rows, benchRow(i, ts))
		if len(rows) == benchBatch {
			if err := s.Write(context.Background(), tb, rows); err != nil {
				b.Fatal(err)
			}
			rows = rows[:0]
		}
	}
}

func benchStores(b *testing.B, run func(b *testing.B, s Store)) {
	b.Run("embedded", func(b *testing.B) {
		s := openEmbedded(b, b.TempDir())
		run(b, s)
	})
	b.Run("redis", func(b *testing.B) {
		run(b, openRedis(b, RedisOptions{URL: sluicetest.RedisServer(b)}))
	})
	b.Run("redis-cached", func(b *testing.B) {
		run(b, openRedis(b, RedisOptions{URL: sluicetest.RedisServer(b), ClientCache: time.Minute}))
	})
}

func BenchmarkGet1x10(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		tb := Table{Name: "main.features.bench", TTL: time.Hour}
		fill(b, s, tb)
		if e, ok := s.(*Embedded); ok {
			if err := e.Flush(); err != nil { // read from sstables, not the memtable
				b.Fatal(err)
			}
		}
		keys := make([]Key, 1024)
		for i := range keys {
			keys[i] = Key{String(fmt.Sprintf("user-%07d", (i*7919)%benchEntities))}
		}
		ctx := context.Background()
		now := time.Now()
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		for i := 0; b.Loop(); i++ {
			res, err := s.Get(ctx, tb, keys[i%len(keys):i%len(keys)+1], benchNames, now)
			if err != nil {
				b.Fatal(err)
			}
			if res[0].Statuses[0] != Present {
				b.Fatalf("status %v", res[0].Statuses[0])
			}
		}
		cpu.report(b, 1)
	})
}

func BenchmarkGet100x10(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		tb := Table{Name: "main.features.bench"}
		fill(b, s, tb)
		keys := make([]Key, 100)
		for i := range keys {
			keys[i] = Key{String(fmt.Sprintf("user-%07d", (i*7919)%benchEntities))}
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		for b.Loop() {
			if _, err := s.Get(ctx, tb, keys, benchNames, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b, 1)
	})
}

func BenchmarkWrite1000x10(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		tb := Table{Name: "main.features.bench"}
		ctx := context.Background()
		ts := time.Now()
		batches := make([][]Row, benchEntities/benchBatch)
		for i := range batches {
			for j := range benchBatch {
				batches[i] = append(batches[i], benchRow(i*benchBatch+j, ts))
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		for i := 0; b.Loop(); i++ {
			batch := batches[i%len(batches)]
			// Each pass writes newer rows, so every row wins.
			for j := range batch {
				batch[j].EventTime = ts.Add(time.Duration(i))
			}
			if err := s.Write(ctx, tb, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "rows/s")
		cpu.report(b, benchBatch)
	})
}

// BenchmarkUpdateBlobs measures the online fold of a windowed feature
// table: each call updates 4 tile blobs (with an expiry) of each of 500
// entities out of 20,000, in the order a fold produces them (entity by
// entity), as internal/publish does several times a second.
func BenchmarkUpdateBlobs(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		const entities, perCall, tiles = 20_000, 500, 4
		ctx := context.Background()
		exp := time.Now().Add(time.Hour)
		add := func(old []byte) ([]byte, error) {
			n := uint64(0)
			if len(old) == 8 {
				n = binary.BigEndian.Uint64(old)
			}
			return binary.BigEndian.AppendUint64(nil, n+1), nil
		}
		calls := make([][]BlobUpdate, entities/perCall)
		for c := range calls {
			for e := range perCall {
				// Spread each call's entities over the key space.
				ent := (c + e*len(calls)) % entities
				for t := range tiles {
					calls[c] = append(calls[c], BlobUpdate{
						Key:      fmt.Appendf(nil, "user-%07d/t%d", ent, t),
						Apply:    add,
						ExpireAt: exp.Add(time.Duration(t) * time.Minute),
					})
				}
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		for i := 0; b.Loop(); i++ {
			if err := s.UpdateBlobs(ctx, "main.features.bench", calls[i%len(calls)]); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b, perCall*tiles)
	})
}
