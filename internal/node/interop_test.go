package node_test

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// These tests use independent clients: kcat (librdkafka) produces to and
// consumes from the embedded broker, and DuckDB reads the ingestion table's
// Parquet files. They skip when the tools are missing, except under
// CI=true, where they fail.

// TestKcatInterop produces with kcat through a node's embedded broker and
// reads the result through the REST API: the ingestion table's rows carry
// the key, value, partition and offset kcat wrote, and the invalid record is
// quarantined with a reason that names the bad field.
func TestKcatInterop(t *testing.T) {
	sluicetest.Kcat(t)
	n := startNode(t)
	addr := n.BrokerAddr()
	api := sluicetest.NewClient(n.URL(), "alice")
	api.MustCreateTopic(t, "clicks", 2)
	api.MustCreateStream(t, fmt.Sprintf(`name: main.web.clicks
source: {kafka: {subscribe: clicks}}
connection: {bootstrap_servers: "%s"}
schema:
  key: {json_schema: {type: string}}
  payload:
    json_schema:
      type: object
      properties:
        user_id: {type: string}
        url:     {type: string}
        ms:      {type: integer}
        at:      {type: string, format: date-time}
      required: [user_id, at]
ingestion:
  destination: main.web.clicks_ingestion
  commit_interval: 100ms
`, addr))

	began := time.Now()
	const (
		v1 = `{"user_id":"u1","url":"/home","ms":120,"at":"2026-11-23T10:00:00Z"}`
		v2 = `{"user_id":"u2","url":"/cart","ms":80,"at":"2026-11-23T12:00:01+02:00"}`
		v3 = `{"user_id":"u3","ms":"slow","at":"2026-11-23T10:00:02Z"}`
		v4 = `{"user_id":"u4","at":"2026-11-23T10:00:03Z"}`
	)
	sluicetest.RunKcat(t, "u1:"+v1+"\nu2:"+v2+"\nu3:"+v3+"\n", "-P", "-b", addr, "-t", "clicks", "-p", "0", "-K:")
	sluicetest.RunKcat(t, "u4:"+v4+"\n", "-P", "-b", addr, "-t", "clicks", "-p", "1", "-K:")

	sluicetest.Eventually(t, 30*time.Second, "ingesting kcat's records", func() (bool, string) {
		ing, err1 := api.Table(t.Context(), "main.web.clicks_ingestion")
		q, err2 := api.Table(t.Context(), "main.web.clicks_ingestion_quarantine")
		if err1 != nil || err2 != nil {
			return false, fmt.Sprint(err1, err2)
		}
		return ing.Rows >= 3 && q.Rows >= 1, fmt.Sprintf("%d rows, %d quarantined", ing.Rows, q.Rows)
	})

	rows := api.MustRows(t, "main.web.clicks_ingestion", 100).Maps()
	slices.SortFunc(rows, func(a, b map[string]any) int {
		return strings.Compare(fmt.Sprint(a["kafka_partition"], a["kafka_offset"]), fmt.Sprint(b["kafka_partition"], b["kafka_offset"]))
	})
	obj := func(userID, url string, ms any, at string) map[string]any {
		m := map[string]any{"user_id": userID, "url": nil, "ms": ms, "at": at}
		if url != "" {
			m["url"] = url
		}
		return m
	}
	want := []struct {
		key       string
		value     map[string]any
		partition float64
		offset    float64
	}{
		{"u1", obj("u1", "/home", 120.0, "2026-11-23T10:00:00Z"), 0, 0},
		{"u2", obj("u2", "/cart", 80.0, "2026-11-23T10:00:01Z"), 0, 1}, // timestamps are UTC
		{"u4", obj("u4", "", nil, "2026-11-23T10:00:03Z"), 1, 0},
	}
	if len(rows) != len(want) {
		t.Fatalf("ingestion table has %d rows, want %d: %v", len(rows), len(want), rows)
	}
	for i, w := range want {
		r := rows[i]
		if r["key"] != w.key || !reflect.DeepEqual(r["value"], w.value) || r["kafka_partition"] != w.partition ||
			r["kafka_offset"] != w.offset || r["kafka_topic"] != "clicks" || r["record_source"] != "stream" {
			t.Errorf("row %d = %v\nwant key %s value %v at %v@%v", i, r, w.key, w.value, w.partition, w.offset)
		}
		ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(r["stream_record_timestamp"]))
		if err != nil || ts.Before(began.Add(-time.Minute)) || ts.After(time.Now().Add(time.Minute)) {
			t.Errorf("row %d: stream_record_timestamp %v is not kcat's produce time (%v): %v", i, r["stream_record_timestamp"], began, err)
		}
	}

	q := api.MustRows(t, "main.web.clicks_ingestion_quarantine", 100).Maps()
	if len(q) != 1 {
		t.Fatalf("quarantine has %d rows, want 1: %v", len(q), q)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	if r := q[0]; r["raw_key"] != b64("u3") || r["raw_value"] != b64(v3) || r["kafka_partition"] != 0.0 || r["kafka_offset"] != 2.0 ||
		!strings.Contains(fmt.Sprint(r["reason"]), "value.ms") {
		t.Errorf("quarantined row = %v; want u3's raw bytes at 0@2 with a reason naming value.ms", r)
	}
	t.Logf("quarantine reason: %v", q[0]["reason"])

	// kcat reads back exactly what it wrote.
	out := sluicetest.RunKcat(t, "", "-C", "-b", addr, "-t", "clicks", "-e", "-q", "-f", `%k=%s@%p:%o\n`)
	got := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(got)
	wantLines := []string{"u1=" + v1 + "@0:0", "u2=" + v2 + "@0:1", "u3=" + v3 + "@0:2", "u4=" + v4 + "@1:0"}
	if !slices.Equal(got, wantLines) {
		t.Errorf("kcat consumed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
}

// TestDuckDBReadsIngestionTable ingests records with a nested struct, a
// timestamp, a list and nulls, then has DuckDB read the ingestion table's
// live Parquet data files and checks it sees what was produced.
func TestDuckDBReadsIngestionTable(t *testing.T) {
	sluicetest.RequireDuckDB(t)
	n := startNode(t)
	api := sluicetest.NewClient(n.URL(), "alice")
	api.MustCreateTopic(t, "orders", 1)
	api.MustCreateStream(t, fmt.Sprintf(`name: main.shop.orders
source: {kafka: {subscribe: orders}}
connection: {bootstrap_servers: "%s"}
schema:
  payload:
    json_schema:
      type: object
      properties:
        order_id:   {type: string}
        amount:     {type: number}
        order_time: {type: string, format: date-time}
        customer:
          type: object
          properties:
            id:   {type: string}
            tier: {type: ["string", "null"]}
        tags: {type: array, items: {type: string}}
      required: [order_id]
ingestion:
  destination: main.shop.orders_ingestion
  commit_interval: 100ms
`, n.BrokerAddr()))

	type order struct {
		key      *string
		value    string
		orderID  string
		amount   any // float64 or nil
		timeUTC  string
		tier     any // string or nil
		tagsJSON any // string or nil
	}
	k := func(s string) *string { return &s }
	orders := []order{
		{k("c1"), `{"order_id":"o1","amount":12.5,"order_time":"2026-11-23T10:00:00Z","customer":{"id":"c1","tier":"gold"},"tags":["a","b"]}`,
			"o1", 12.5, "2026-11-23 10:00:00+00", "gold", `["a","b"]`},
		{k("c2"), `{"order_id":"o2","amount":3,"order_time":"2026-11-23T12:30:00.123456+02:00","customer":{"id":"c2","tier":null},"tags":[]}`,
			"o2", 3.0, "2026-11-23 10:30:00.123456+00", nil, `[]`},
		{nil, `{"order_id":"o3"}`, "o3", nil, "", nil, nil},
		{k("c4"), `{"order_id":"o4","amount":-0.25,"order_time":"2026-01-01T00:00:00-05:00"}`,
			"o4", -0.25, "2026-01-01 05:00:00+00", nil, nil},
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.BrokerAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, o := range orders {
		r := &kgo.Record{Topic: "orders", Value: []byte(o.value)}
		if o.key != nil {
			r.Key = []byte(*o.key)
		}
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(sluicetest.Context(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	sluicetest.Eventually(t, 30*time.Second, "ingesting the orders", func() (bool, string) {
		tb, err := api.Table(t.Context(), "main.shop.orders_ingestion")
		return err == nil && tb.Rows >= int64(len(orders)), fmt.Sprint(tb.Rows, err)
	})

	name, _ := ident.Parse("main.shop.orders_ingestion")
	tbl, err := n.Tables.Load(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	files, err := tbl.DataFiles(t.Context())
	if err != nil || len(files) == 0 {
		t.Fatalf("data files: %v, %v", files, err)
	}
	res := sluicetest.DuckDB(t, files, `SELECT key, value.order_id AS order_id, value.amount AS amount,
		CAST(value.order_time AS VARCHAR) AS order_time, value.customer.tier AS tier, to_json(value.tags)::VARCHAR AS tags,
		kafka_topic, kafka_partition, kafka_offset, typeof(value.order_time) AS time_type, typeof(value) AS value_type
		FROM t ORDER BY kafka_offset`)
	if len(res.Rows) != len(orders) {
		t.Fatalf("DuckDB read %d rows, want %d: %v", len(res.Rows), len(orders), res.Rows)
	}
	t.Logf("DuckDB's type of value: %v", res.Rows[0]["value_type"])
	for i, o := range orders {
		r := res.Rows[i]
		var key any
		if o.key != nil {
			key = *o.key
		}
		var ts any
		if o.timeUTC != "" {
			ts = o.timeUTC
		}
		got := []any{r["key"], r["order_id"], r["amount"], r["order_time"], r["tier"], r["tags"], r["kafka_topic"], r["kafka_partition"], r["kafka_offset"], r["time_type"]}
		want := []any{key, o.orderID, o.amount, ts, o.tier, o.tagsJSON, "orders", 0.0, fmt.Sprint(i), "TIMESTAMP WITH TIME ZONE"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DuckDB row %d:\n got %v\nwant %v", i, got, want)
		}
	}
}
