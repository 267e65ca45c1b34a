package online

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkPebbleGetRaw is the floor under BenchmarkGet1x10/embedded: the
// same data, read with pebble's Get alone (no key encoding, no decoding,
// no results).
func BenchmarkPebbleGetRaw(b *testing.B) {
	s, err := OpenEmbedded(b.TempDir(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	names := make([]string, 10)
	for i := range names {
		names[i] = fmt.Sprintf("feature_%02d", i)
	}
	tb := Table{Name: "main.features.bench"}
	ts := time.Now()
	for n := 0; n < 100_000; n += 1000 {
		rows := make([]Row, 1000)
		for j := range rows {
			vals := make([]Value, 10)
			for k := range vals {
				vals[k] = Float64(float64(n + j))
			}
			rows[j] = Row{Key: Key{String(fmt.Sprintf("user-%07d", n+j))}, Names: names, Values: vals, EventTime: ts}
		}
		if err := s.Write(context.Background(), tb, rows); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = AppendKey(appendTablePrefix(nil, tb.Name), Key{String(fmt.Sprintf("user-%07d", (i*7919)%100_000))})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, closer, err := s.db.Get(keys[i%len(keys)])
		if err != nil {
			b.Fatal(err)
		}
		closer.Close()
	}
}
