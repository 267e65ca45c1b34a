package online

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"
)

var seedKeys = []Key{
	{String("u1")},
	{Int64(-5), String(""), Null()},
	{Bool(true), Float64(math.Copysign(0, -1)), Float64(math.NaN()), TimestampNanos(math.MinInt64)},
	{Int64(math.MaxInt64), String(string(make([]byte, 200)))},
}

var seedRows = []Row{
	{EventTime: time.Unix(0, 0), Names: []string{"a"}, Values: []Value{Int64(1)}},
	{EventTime: time.Unix(1e9, 5), Version: 7, Names: []string{"n", "b", "f", "s", "t", "i"},
		Values: []Value{Null(), Bool(false), Float64(math.Inf(1)), String("héllo"), TimestampNanos(-1), Int64(math.MinInt64)}},
	{EventTime: time.Unix(0, math.MaxInt64)},
}

func TestKeyCanonical(t *testing.T) {
	cases := map[string]struct{ a, b Key }{
		"-0 is 0":           {Key{Float64(0)}, Key{Float64(math.Copysign(0, -1))}},
		"NaNs are one":      {Key{Float64(math.NaN())}, Key{Float64(math.Float64frombits(0xfff0000000000001))}},
		"columns delimited": {Key{String("ab"), String("")}, Key{String("ab"), String("")}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if a, b := AppendKey(nil, c.a), AppendKey(nil, c.b); !bytes.Equal(a, b) {
				t.Errorf("%x != %x", a, b)
			}
		})
	}
	distinct := []Key{{String("a"), String("b")}, {String("ab"), String("")}, {String(""), String("ab")}, {String("5")}, {Int64(5)}, {Float64(5)}, {TimestampNanos(5)}}
	seen := map[string]int{}
	for i, k := range distinct {
		if j, dup := seen[string(AppendKey(nil, k))]; dup {
			t.Errorf("keys %v and %v encode equally", distinct[j], k)
		}
		seen[string(AppendKey(nil, k))] = i
	}
}

func TestRowRoundTrip(t *testing.T) {
	for _, r := range seedRows {
		b := appendRow(nil, &r)
		got, err := decodeRow(b)
		if err != nil {
			t.Fatalf("decodeRow(%x): %v", b, err)
		}
		if !got.EventTime.Equal(r.EventTime) || got.Version != r.Version || len(got.Names) != len(r.Names) {
			t.Fatalf("got %+v, want %+v", got, r)
		}
		for i := range r.Names {
			if got.Names[i] != r.Names[i] || !got.Values[i].Equal(r.Values[i]) {
				t.Errorf("feature %d: got %s=%v, want %s=%v", i, got.Names[i], got.Values[i], r.Names[i], r.Values[i])
			}
		}
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"unknown format": {2, 0},
		"short header":   {1, 0, 0},
		"overlong count": append(append([]byte{1}, make([]byte, 16)...), 0x80, 0x00),
		"trailing":       append(appendRow(nil, &seedRows[0]), 0),
	} {
		if _, err := decodeRow(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decodeRow: %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzDecodeKey checks DecodeKey's invariants: no panics; every accepted
// input is canonical (re-encoding gives it back); every error wraps
// ErrCorrupt.
func FuzzDecodeKey(f *testing.F) {
	for _, k := range seedKeys {
		f.Add(AppendKey(nil, k))
	}
	f.Add([]byte{0})
	f.Add([]byte{1, 3, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := DecodeKey(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := AppendKey(nil, k); !bytes.Equal(again, b) {
			t.Fatalf("DecodeKey(%x) = %v, which encodes as %x", b, k, again)
		}
	})
}

// FuzzDecodeRow checks decodeRow's invariants: no panics; every accepted
// input re-encodes to itself; every error wraps ErrCorrupt; and the Get
// path (lookup.decodeInto) accepts exactly what decodeRow accepts and
// finds each stored feature's value.
func FuzzDecodeRow(f *testing.F) {
	for _, r := range seedRows {
		f.Add(appendRow(nil, &r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRow(b)
		l := newLookup([]string{"a", "s", "n"})
		res := l.results(1)
		gerr := l.decodeInto(&res[0], Table{Name: "t"}, b, time.Unix(0, 0))
		if (err == nil) != (gerr == nil) {
			t.Fatalf("decodeRow error %v, decodeInto error %v", err, gerr)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := appendRow(nil, &r); !bytes.Equal(again, b) {
			t.Fatalf("decodeRow(%x) = %+v, which encodes as %x", b, r, again)
		}
		for i, want := range l.features {
			for j := len(r.Names) - 1; j >= 0; j-- { // the last occurrence wins in decodeInto
				if r.Names[j] == want {
					if v := r.Values[j]; !v.IsNull() && !res[0].Values[i].Equal(v) {
						t.Fatalf("feature %s: Get found %v, row holds %v", want, res[0].Values[i], v)
					}
					break
				}
			}
		}
	})
}

// FuzzDecodeValue checks decodeValue's invariants: no panics; the bytes it
// consumes re-encode to themselves; errors wrap ErrCorrupt.
func FuzzDecodeValue(f *testing.F) {
	for _, r := range seedRows {
		for _, v := range r.Values {
			f.Add(appendValue(nil, v))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, rest, err := decodeValue(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		used := b[:len(b)-len(rest)]
		if again := appendValue(nil, v); !bytes.Equal(again, used) {
			t.Fatalf("decodeValue(%x) = %v, which encodes as %x", used, v, again)
		}
	})
}
