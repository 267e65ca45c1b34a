package server

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/online"
)

// decodeStd decodes body as the API did before the hand-written parser.
func decodeStd(body []byte) (OnlineFeaturesRequest, error) {
	var req OnlineFeaturesRequest
	err := decodeJSONBytes(body, &req)
	return req, err
}

var requestSeeds = []string{
	`{"features":["main.features.user_activity:revenue_1h","main.features.user_activity:platform"],"entities":{"user_id":["u1","u2"]}}`,
	`{"features": ["t:a"], "entities": {"user_id": [1, -2.5e3, 0, true, false, null]}, "full_feature_names": true}`,
	` { "entities" : { "a" : [ "x" ] , "b" : [ 2 ] } , "features" : [ ] } `,
	`{}`,
	`{"features":[],"entities":{}}`,
	`{"features":["t:a"],"entities":{"k":[]}}`,
	`{"features":["ünïcode:f"],"entities":{"k":["日本"]}}`,
	// Shapes the fast path leaves to encoding/json.
	`{"features":["t:\u0061"],"entities":{"k":["a"]}}`,
	`{"Features":["t:a"],"entities":{"k":["a"]}}`,
	`{"features":null,"entities":{"k":["a"]}}`,
	`{"features":["t:a"],"features":["t:b"],"entities":{"k":["a"]}}`,
	`{"features":["t:a"],"entities":{"k":["a"],"k":["b"]}}`,
	`{"features":["t:a"],"entities":{"k":[{"x":1}]}}`,
	`{"features":["t:a"],"entities":{"k":[1e400]}}`,
	`{"features":["t:a"],"entities":{"k":[01]}}`,
	`{"features":["t:a"],"entities":{"k":["a"]}} trailing`,
	`{"features":["t:a"],"entities":{"k":["a"]},"x":1}`,
	`{"features":["t:a"],"entities":{"k":["\xff"]}}`,
	`{"features":["t:a"],"entities":{"k":["a"]},}`,
	`null`,
	``,
}

// TestParseOnlineFeaturesRequest checks which bodies take the fast path,
// and that what it decodes is what encoding/json decodes.
func TestParseOnlineFeaturesRequest(t *testing.T) {
	fast := map[string]bool{}
	for _, s := range requestSeeds[:7] {
		fast[s] = true
	}
	for _, s := range requestSeeds {
		t.Run(s, func(t *testing.T) {
			var got OnlineFeaturesRequest
			ok := parseOnlineFeaturesRequest([]byte(s), &got, &internTable{})
			if ok != fast[s] {
				t.Fatalf("fast path %v, want %v", ok, fast[s])
			}
			if !ok {
				return
			}
			want, err := decodeStd([]byte(s))
			if err != nil {
				t.Fatalf("fast path accepted what encoding/json rejects: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %#v, want %#v", got, want)
			}
		})
	}
}

// FuzzParseOnlineFeaturesRequest checks parseOnlineFeaturesRequest's
// invariants: it never panics, and whenever it accepts a body,
// encoding/json (as decodeJSON runs it) accepts it too and decodes an
// equal request.
func FuzzParseOnlineFeaturesRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got OnlineFeaturesRequest
		if !parseOnlineFeaturesRequest(body, &got, nil) {
			return
		}
		want, err := decodeStd(body)
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, want %#v", body, got, want)
		}
	})
}

// FuzzAppendJSONString checks that appendJSONString writes what
// json.Marshal writes, for any string, valid UTF-8 or not.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\s`, "<a&b>", "\x00\x1f\b\f\n\r\t", "\u2028\u2029", "\xff\xfe", "日本語", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

// FuzzAppendJSONFloat checks that appendJSONFloat writes what json.Marshal
// writes for every finite float64, and null for the rest.
func FuzzAppendJSONFloat(f *testing.F) {
	for _, x := range []float64{0, math.Copysign(0, -1), 1, -1.5, 1e-7, 1e-6, 123456789, 1e20, 1e21, 1e300, 5e-324, math.MaxFloat64} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		want := []byte("null")
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			want, _ = json.Marshal(x)
		}
		if got := appendJSONFloat(nil, x); !bytes.Equal(got, want) {
			t.Fatalf("%v: got %s, want %s", x, got, want)
		}
	})
}

// referenceResponse builds the response as the API built it before the
// hand-written writer, for json.Marshal.
func referenceResponse(sf *servedFeatures) *OnlineFeaturesResponse {
	resp := &OnlineFeaturesResponse{}
	for i, k := range sf.entityCols {
		v := FeatureVector{Values: sf.entityVals[i], Statuses: make([]string, sf.rows), EventTimestamps: make([]string, sf.rows)}
		for r := range sf.rows {
			v.Statuses[r], v.EventTimestamps[r] = "PRESENT", epoch
		}
		resp.Metadata.FeatureNames = append(resp.Metadata.FeatureNames, k)
		resp.Results = append(resp.Results, v)
	}
	for i, c := range sf.cols {
		resp.Metadata.FeatureNames = append(resp.Metadata.FeatureNames, sf.names[i])
		v := FeatureVector{Values: make([]any, sf.rows), Statuses: make([]string, sf.rows), EventTimestamps: make([]string, sf.rows)}
		for r := range sf.rows {
			res := c.g.res[r]
			v.Values[r] = onlineJSON(res.Values[c.fi])
			v.Statuses[r] = res.Statuses[c.fi].String()
			v.EventTimestamps[r] = epoch
			if res.Found {
				v.EventTimestamps[r] = res.EventTime.UTC().Format(time.RFC3339Nano)
			}
		}
		resp.Results = append(resp.Results, v)
	}
	return resp
}

// TestServedFeaturesJSON checks that the hand-written response is byte for
// byte what json.Marshal writes for Feast's response shape.
func TestServedFeaturesJSON(t *testing.T) {
	ts := time.Date(2026, 11, 23, 10, 5, 0, 123456000, time.FixedZone("X", 3600))
	values := []online.Value{
		online.Null(), online.Bool(true), online.Bool(false), online.Int64(-42), online.Int64(math.MaxInt64),
		online.Float64(3.5), online.Float64(1e-9), online.Float64(1e22), online.Float64(math.NaN()), online.Float64(math.Inf(-1)),
		online.String("web"), online.String("<\"tricky\">\n\u2028\xff"), online.Timestamp(ts), online.TimestampNanos(0),
	}
	statuses := []online.Status{online.Present, online.NullValue, online.NotFound, online.OutsideMaxAge}
	res := make([]online.Result, 3)
	for r := range res {
		res[r].Values = values
		res[r].Statuses = make([]online.Status, len(values))
		for i := range values {
			res[r].Statuses[i] = statuses[(i+r)%len(statuses)]
		}
	}
	res[0].Found, res[0].EventTime = true, ts
	res[2].Found, res[2].EventTime = true, time.Unix(0, 0)
	g := &servedTable{res: res, stamps: formatEventTimes(res)}
	g2 := &servedTable{res: res[:2], stamps: formatEventTimes(res[:2])}
	cols := func(g *servedTable) []servedColumn {
		c := make([]servedColumn, len(values))
		for i := range c {
			c[i] = servedColumn{g: g, fi: i}
		}
		return c
	}
	names := func(prefix string) []string {
		n := make([]string, len(values))
		for i := range n {
			n[i] = prefix + string(rune('a'+i))
		}
		return n
	}
	for name, sf := range map[string]*servedFeatures{
		"one key column": {rows: 3, entityCols: []string{"user_id"}, entityVals: [][]any{{"u1", "u<2>", "nobody"}},
			names: names(""), cols: cols(g)},
		"two key columns": {rows: 2, entityCols: []string{"user_id", "n"}, entityVals: [][]any{{"u1", "u2"}, {1.0, -2.5e-7}},
			names: names("main.f.t__"), cols: cols(g2)},
		"odd entity values": {rows: 3, entityCols: []string{"k"}, entityVals: [][]any{{true, nil, map[string]any{"x": 1.0}}},
			names: names(""), cols: cols(g)},
		"no rows": {rows: 0, entityCols: []string{"k"}, entityVals: [][]any{nil}, names: names(""), cols: cols(g)},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(referenceResponse(sf))
			if err != nil {
				t.Fatal(err)
			}
			if got := sf.appendJSON(nil); !bytes.Equal(got, want) {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}
