package ident

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	good := map[string]Name{
		"main.demo.orders":  {"main", "demo", "orders"},
		"a.b.c_1":           {"a", "b", "c_1"},
		"Main.Demo.Orders2": {"Main", "Demo", "Orders2"},
	}
	for s, want := range good {
		t.Run(s, func(t *testing.T) {
			got, err := Parse(s)
			if err != nil || got != want || got.String() != s {
				t.Fatalf("Parse(%q) = %v, %v; want %v", s, got, err, want)
			}
		})
	}
	bad := map[string]string{
		"two parts":  "main.orders",
		"four parts": "a.b.c.d",
		"empty part": "main..orders",
		"dash":       "main.demo.orders-1",
		"empty":      "",
		"space":      "main.demo.or ders",
	}
	for name, s := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(s); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) err = %v, want ErrInvalid", s, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	// Invariant: a name that parses prints back to the same string.
	for _, s := range []string{"a.b.c", "main.demo.orders", "..", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		if n.String() != s {
			t.Fatalf("round trip %q -> %q", s, n.String())
		}
	})
}
