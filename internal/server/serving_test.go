package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// TestGetOnlineFeaturesFormat serves a synced feature table over HTTP and
// checks Feast's response byte for byte, for a body the hand-written
// parser takes and for equivalent bodies it leaves to encoding/json
// (escapes, other key order and spacing): all give the same bytes.
func TestGetOnlineFeaturesFormat(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	ctx := sluicetest.Context(t)
	name, _ := ident.Parse("main.f.users")
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "revenue", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "clicks", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "platform", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	tb, err := n.Tables.Create(ctx, name, sc, table.CreateOptions{Properties: map[string]string{
		"sluice.primary_key": "user_id,ts", "sluice.timeseries_key": "ts",
	}})
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	ts := time.Date(2026, 11, 23, 10, 5, 0, 500000000, time.UTC)
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"u1", "u<2>"}, nil)
	b.Field(1).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{arrow.Timestamp(ts.UnixMicro()), arrow.Timestamp(ts.Add(time.Minute).UnixMicro())}, nil)
	b.Field(2).(*array.Float64Builder).AppendValues([]float64{7, 0.1}, nil)
	b.Field(3).(*array.Int64Builder).AppendValues([]int64{3, 0}, []bool{true, false})
	b.Field(4).(*array.StringBuilder).AppendValues([]string{"web", "a\"b"}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := tb.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Publisher.Sync(context.Background(), name); err != nil {
		t.Fatal(err)
	}

	want := `{"metadata":{"feature_names":["user_id","revenue","clicks","platform"]},"results":[` +
		`{"values":["u1","u\u003c2\u003e","nobody"],"statuses":["PRESENT","PRESENT","PRESENT"],"event_timestamps":["1970-01-01T00:00:00Z","1970-01-01T00:00:00Z","1970-01-01T00:00:00Z"]},` +
		`{"values":[7,0.1,null],"statuses":["PRESENT","PRESENT","NOT_FOUND"],"event_timestamps":["2026-11-23T10:05:00.5Z","2026-11-23T10:06:00.5Z","1970-01-01T00:00:00Z"]},` +
		`{"values":[3,null,null],"statuses":["PRESENT","NULL_VALUE","NOT_FOUND"],"event_timestamps":["2026-11-23T10:05:00.5Z","2026-11-23T10:06:00.5Z","1970-01-01T00:00:00Z"]},` +
		`{"values":["web","a\"b",null],"statuses":["PRESENT","PRESENT","NOT_FOUND"],"event_timestamps":["2026-11-23T10:05:00.5Z","2026-11-23T10:06:00.5Z","1970-01-01T00:00:00Z"]}]}`
	for name, body := range map[string]string{
		"fast path":   `{"features":["main.f.users:revenue","main.f.users:clicks","main.f.users:platform"],"entities":{"user_id":["u1","u<2>","nobody"]}}`,
		"escapes":     `{"features":["main.f.users:revenue","main.f.users:clicks","main.f.users:\u0070latform"],"entities":{"user_id":["u1","u\u003c2>","nobody"]}}`,
		"other order": "{\n  \"entities\": {\"user_id\": [\"u1\", \"u<2>\", \"nobody\"]},\n  \"full_feature_names\": false,\n  \"features\": [\"main.f.users:revenue\", \"main.f.users:clicks\", \"main.f.users:platform\"]\n}",
	} {
		t.Run(name, func(t *testing.T) {
			r := mustCall(t, n.URL(), "", "POST", "/get-online-features", body, http.StatusOK)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !bytes.Equal(r.body, []byte(want)) {
				t.Fatalf("got\n%s\nwant\n%s", r.body, want)
			}
		})
	}

	t.Run("full feature names", func(t *testing.T) {
		r := mustCall(t, n.URL(), "", "POST", "/get-online-features",
			`{"features":["main.f.users:revenue"],"entities":{"user_id":["u1"]},"full_feature_names":true}`, http.StatusOK)
		var resp struct {
			Metadata struct {
				FeatureNames []string `json:"feature_names"`
			} `json:"metadata"`
		}
		r.decode(t, &resp)
		if got := resp.Metadata.FeatureNames; len(got) != 2 || got[1] != "main.f.users__revenue" {
			t.Fatalf("feature names %v", got)
		}
	})

	for name, tc := range map[string]struct {
		body string
		want int
	}{
		"not json":          {`{"features":`, 400},
		"unknown field":     {`{"features":["main.f.users:revenue"],"entities":{"user_id":["u1"]},"extra":1}`, 400},
		"unknown feature":   {`{"features":["main.f.users:nope"],"entities":{"user_id":["u1"]}}`, 400},
		"unknown table":     {`{"features":["main.f.nope:revenue"],"entities":{"user_id":["u1"]}}`, 404},
		"missing key":       {`{"features":["main.f.users:revenue"],"entities":{"customer":["u1"]}}`, 400},
		"extra key":         {`{"features":["main.f.users:revenue"],"entities":{"user_id":["u1"],"x":["1"]}}`, 400},
		"ragged entities":   {`{"features":["main.f.users:revenue"],"entities":{"user_id":["u1"],"x":["1","2"]}}`, 400},
		"bad key type":      {`{"features":["main.f.users:revenue"],"entities":{"user_id":[true]}}`, 400},
		"no features":       {`{"features":[],"entities":{"user_id":["u1"]}}`, 400},
		"bad feature ref":   {`{"features":["main.f.users"],"entities":{"user_id":["u1"]}}`, 400},
		"too large":         {`{"features":["` + string(bytes.Repeat([]byte("x"), 2<<20)) + `"]}`, 400},
		"number as string":  {`{"features":["main.f.users:revenue"],"entities":{"user_id":[12]}}`, 200},
		"null full names":   {`{"features":["main.f.users:revenue"],"entities":{"user_id":["u1"]},"full_feature_names":null}`, 200},
		"duplicate feature": {`{"features":["main.f.users:revenue","main.f.users:revenue"],"entities":{"user_id":["u1"]}}`, 200},
	} {
		t.Run(name, func(t *testing.T) {
			r := mustCall(t, n.URL(), "", "POST", "/get-online-features", tc.body, tc.want)
			if tc.want != 200 {
				r.errorBody(t)
				return
			}
			var resp map[string]any
			if err := json.Unmarshal(r.body, &resp); err != nil {
				t.Fatalf("%v: %s", err, r.body)
			}
		})
	}
}
