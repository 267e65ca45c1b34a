package server_test

// These tests drive the REST API of a real node (embedded broker, SQLite
// catalog, Iceberg tables on t.TempDir(), running ingestion) with a real
// HTTP client, and check the contract docs/api.md states.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// streamJSON is the part of a stream response these tests read.
type streamJSON struct {
	Name         string          `json:"name"`
	Owner        string          `json:"owner"`
	CreatedAt    time.Time       `json:"created_at"`
	StartOffsets json.RawMessage `json:"start_offsets"`
	Ingestion    struct {
		Destination string `json:"destination"`
	} `json:"ingestion"`
	Schema json.RawMessage `json:"schema"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
}

type streamListJSON struct {
	Streams       []streamJSON `json:"streams"`
	NextPageToken string       `json:"next_page_token"`
}

func names(l streamListJSON) []string {
	var out []string
	for _, s := range l.Streams {
		out = append(out, s.Name)
	}
	return out
}

func TestCreateStream(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	base, addr := n.URL(), n.BrokerAddr()
	mustCall(t, base, "alice", "POST", "/api/v1/topics", map[string]any{"name": "clicks", "partitions": 2}, http.StatusCreated)

	t.Run("yaml", func(t *testing.T) {
		r := mustCall(t, base, "alice", "POST", "/api/v1/streams",
			clicksSpec("main.web.clicks", "clicks", "main.web.clicks_ingestion", addr), http.StatusCreated)
		var s streamJSON
		r.decode(t, &s)
		if s.Name != "main.web.clicks" || s.Owner != "alice" || s.Ingestion.Destination != "main.web.clicks_ingestion" {
			t.Errorf("created stream = %+v", s)
		}
		if got := compactJSON(t, s.StartOffsets); got != `{"clicks":{"0":0,"1":0}}` {
			t.Errorf("start_offsets = %s, want the end of both (empty) partitions", got)
		}
		if s.CreatedAt.IsZero() || !strings.Contains(string(s.Schema), "json_schema") {
			t.Errorf("created_at %v, schema %s: want both set", s.CreatedAt, s.Schema)
		}
		if st := s.Status.State; st != "starting" && st != "running" {
			t.Errorf("status.state = %q", st)
		}
	})
	t.Run("json", func(t *testing.T) {
		spec := map[string]any{
			"name":       "main.web.clicks_json",
			"source":     map[string]any{"kafka": map[string]any{"assign": `{"clicks":[1]}`}},
			"connection": map[string]any{"bootstrap_servers": addr},
			"schema":     map[string]any{"payload": map[string]any{"json_schema": `{"type":"object","properties":{"a":{"type":"string"}}}`}},
			"ingestion":  map[string]any{"destination": "main.web.clicks_json_ingestion", "commit_interval": "1s"},
		}
		r := mustCall(t, base, "alice", "POST", "/api/v1/streams", spec, http.StatusCreated)
		var s streamJSON
		r.decode(t, &s)
		if s.Name != "main.web.clicks_json" || compactJSON(t, s.StartOffsets) != `{"clicks":{"1":0}}` {
			t.Errorf("created stream = %+v (start_offsets %s)", s, s.StartOffsets)
		}
		// GET shows the stream with its status.
		r = mustCall(t, base, "alice", "GET", "/api/v1/streams/main.web.clicks_json", nil, http.StatusOK)
		var got streamJSON
		r.decode(t, &got)
		// The catalog keeps created_at in µs; POST's response has ns
		// (ingest.Manager.Create does not truncate). Compare at µs.
		if got.Name != s.Name || !got.CreatedAt.Equal(s.CreatedAt.Truncate(time.Microsecond)) || got.Status.State == "" {
			t.Errorf("GET = %+v, created %+v", got, s)
		}
	})

	// Every refused create leaves nothing behind: the two streams above
	// are still all there is.
	valid := clicksSpec("main.web.other", "clicks", "main.web.other_ingestion", addr)
	cases := map[string]struct {
		body    string
		status  []int // accepted statuses
		code    []string
		field   string // "" accepts any
		message string // a substring of the message
	}{
		"two subscription modes": {
			body:   strings.Replace(valid, "{subscribe: clicks}", "{subscribe: clicks, subscribe_pattern: 'c.*'}", 1),
			status: []int{400}, code: []string{"INVALID_ARGUMENT"}, field: "source.kafka", message: "exactly one",
		},
		"missing destination": {
			body:   strings.Replace(valid, "destination: main.web.other_ingestion", "commit_max_records: 10", 1),
			status: []int{400}, code: []string{"INVALID_ARGUMENT"}, field: "ingestion.destination",
		},
		"quarantine destination": {
			body:   strings.Replace(valid, "other_ingestion", "other_quarantine", 1),
			status: []int{400}, code: []string{"INVALID_ARGUMENT"}, field: "ingestion.destination", message: "_quarantine",
		},
		"unknown field": {
			body:   strings.Replace(valid, "commit_interval:", "commit_intervall:", 1),
			status: []int{400}, code: []string{"INVALID_ARGUMENT"}, message: "commit_intervall",
		},
		"not yaml": {
			body:   "name: [unclosed",
			status: []int{400}, code: []string{"INVALID_ARGUMENT"},
		},
		"empty body": {
			body:   "",
			status: []int{400}, code: []string{"INVALID_ARGUMENT"},
		},
		"bad payload schema": {
			body:   strings.Replace(valid, "zeta:  {type: string}", "zeta:  {type: wibble}", 1),
			status: []int{400}, code: []string{"INVALID_ARGUMENT"}, field: "schema.payload.json_schema",
		},
		"bad key schema": {
			body:   strings.Replace(valid, "key: {json_schema: {type: string}}", "key: {json_schema: {type: 7}}", 1),
			status: []int{400}, code: []string{"INVALID_ARGUMENT"}, field: "schema.key.json_schema",
		},
		// docs/api.md: 409 ALREADY_EXISTS when the name is taken.
		"name taken": {
			body:   strings.Replace(valid, "name: main.web.other", "name: main.web.clicks", 1),
			status: []int{409}, code: []string{"ALREADY_EXISTS"}, field: "name", message: "main.web.clicks",
		},
		"destination taken": {
			body:   strings.Replace(valid, "main.web.other_ingestion", "main.web.clicks_ingestion", 1),
			status: []int{409}, code: []string{"ALREADY_EXISTS"}, field: "ingestion.destination", message: "belongs to stream main.web.clicks",
		},
		"unreachable broker": {
			body:   strings.Replace(valid, addr, closedAddr(t), 1),
			status: []int{503}, code: []string{"UNAVAILABLE"}, message: "cannot reach",
		},
		"bad bootstrap servers": {
			body:   strings.Replace(valid, addr, "localhost", 1),
			status: []int{400}, code: []string{"INVALID_ARGUMENT"}, field: "connection.bootstrap_servers",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := call(t, base, "alice", "POST", "/api/v1/streams", c.body)
			if !slices.Contains(c.status, r.status) {
				t.Fatalf("status %d, want one of %v: %s", r.status, c.status, r.body)
			}
			code, msg, field := r.errorBody(t)
			if i := slices.Index(c.status, r.status); c.code[min(i, len(c.code)-1)] != code {
				t.Errorf("status %d with code %q: %s", r.status, code, r.body)
			}
			if c.field != "" && field != c.field {
				t.Errorf("field = %q, want %q (message %q)", field, c.field, msg)
			}
			if !strings.Contains(msg, c.message) {
				t.Errorf("message %q does not contain %q", msg, c.message)
			}
		})
	}

	var l streamListJSON
	mustCall(t, base, "alice", "GET", "/api/v1/streams?catalog_name=main&schema_name=web", nil, 200).decode(t, &l)
	if got := names(l); !slices.Equal(got, []string{"main.web.clicks", "main.web.clicks_json"}) {
		t.Errorf("streams after the refused creates = %v", got)
	}
	var tl struct{ Tables []string }
	mustCall(t, base, "alice", "GET", "/api/v1/tables?catalog_name=main&schema_name=web", nil, 200).decode(t, &tl)
	if want := []string{"main.web.clicks_ingestion", "main.web.clicks_ingestion_quarantine",
		"main.web.clicks_json_ingestion", "main.web.clicks_json_ingestion_quarantine"}; !sameSet(tl.Tables, want) {
		t.Errorf("tables after the refused creates = %v, want %v", tl.Tables, want)
	}
}

func compactJSON(t testing.TB, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("compacting %s: %v", raw, err)
	}
	return b.String()
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestNotFoundAndBadRequests(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	base := n.URL()
	cases := map[string]struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		"unknown stream":              {"GET", "/api/v1/streams/main.web.nope", nil, 404, "NOT_FOUND"},
		"delete unknown stream":       {"DELETE", "/api/v1/streams/main.web.nope", nil, 404, "NOT_FOUND"},
		"bad stream name":             {"GET", "/api/v1/streams/nope", nil, 400, "INVALID_ARGUMENT"},
		"unknown table":               {"GET", "/api/v1/tables/main.web.nope", nil, 404, "NOT_FOUND"},
		"rows of unknown table":       {"GET", "/api/v1/tables/main.web.nope/rows", nil, 404, "NOT_FOUND"},
		"optimize unknown table":      {"POST", "/api/v1/tables/main.web.nope/optimize", nil, 404, "NOT_FOUND"},
		"unknown endpoint":            {"GET", "/api/v1/nope", nil, 404, "NOT_FOUND"},
		"unknown method":              {"PATCH", "/api/v1/streams/main.web.nope", nil, 404, "NOT_FOUND"},
		"root":                        {"GET", "/", nil, 404, "NOT_FOUND"},
		"list schema without catalog": {"GET", "/api/v1/streams?schema_name=web", nil, 400, "INVALID_ARGUMENT"},
		"list tables without schema":  {"GET", "/api/v1/tables?catalog_name=main", nil, 400, "INVALID_ARGUMENT"},
		"max_results 0":               {"GET", "/api/v1/streams?max_results=0", nil, 400, "INVALID_ARGUMENT"},
		"max_results 1001":            {"GET", "/api/v1/streams?max_results=1001", nil, 400, "INVALID_ARGUMENT"},
		"max_results not a number":    {"GET", "/api/v1/streams?max_results=ten", nil, 400, "INVALID_ARGUMENT"},
		"include_schemas not a bool":  {"GET", "/api/v1/streams?include_schemas=maybe", nil, 400, "INVALID_ARGUMENT"},
		"delete missing secret":       {"DELETE", "/api/v1/secrets/kafka/nope", nil, 404, "NOT_FOUND"},
		"secret with unknown field":   {"PUT", "/api/v1/secrets/kafka/pw", `{"valu":"x"}`, 400, "INVALID_ARGUMENT"},
		"topic with unknown field":    {"POST", "/api/v1/topics", `{"name":"t","partition":3}`, 400, "INVALID_ARGUMENT"},
		"topic without name":          {"POST", "/api/v1/topics", `{"partitions":3}`, 400, "INVALID_ARGUMENT"},
		"topic with -1 partitions":    {"POST", "/api/v1/topics", `{"name":"t","partitions":-1}`, 400, "INVALID_ARGUMENT"},
		// docs/api.md: 400 for "a bad ... name".
		"topic with a bad name": {"POST", "/api/v1/topics", `{"name":"no spaces","partitions":1}`, 400, "INVALID_ARGUMENT"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := call(t, base, "alice", c.method, c.path, c.body)
			if r.status != c.status {
				t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, r.status, c.status, r.body)
			}
			if code, _, _ := r.errorBody(t); code != c.code {
				t.Errorf("code %q, want %q", code, c.code)
			}
		})
	}

	r := mustCall(t, base, "", "GET", "/healthz", nil, 200)
	if got := string(bytes.Join(bytes.Fields(r.body), nil)); got != `{"status":"ok"}` {
		t.Errorf("/healthz = %s", r.body)
	}
}

func TestListStreams(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	base, addr := n.URL(), n.BrokerAddr()
	mustCall(t, base, "alice", "POST", "/api/v1/topics", map[string]any{"name": "t", "partitions": 1}, http.StatusCreated)
	create := func(user, name string) {
		mustCall(t, base, user, "POST", "/api/v1/streams", clicksSpec(name, "t", name+"_ingestion", addr), http.StatusCreated)
	}
	// Created out of order: the list is ordered by name.
	for _, s := range []string{"main.web.c", "main.web.a", "main.other.x", "zz.web.z", "main.web.b"} {
		create("alice", s)
	}
	create("bob", "main.web.bobs")

	list := func(user, query string) streamListJSON {
		t.Helper()
		var l streamListJSON
		mustCall(t, base, user, "GET", "/api/v1/streams"+query, nil, 200).decode(t, &l)
		return l
	}
	cases := map[string]struct {
		user, query string
		want        []string
		token       bool
	}{
		"schema":              {"alice", "?catalog_name=main&schema_name=web", []string{"main.web.a", "main.web.b", "main.web.c"}, false},
		"catalog":             {"alice", "?catalog_name=main", []string{"main.other.x", "main.web.a", "main.web.b", "main.web.c"}, false},
		"all":                 {"alice", "", []string{"main.other.x", "main.web.a", "main.web.b", "main.web.c", "zz.web.z"}, false},
		"catalog prefix only": {"alice", "?catalog_name=mai", nil, false},
		"unknown schema":      {"alice", "?catalog_name=main&schema_name=nope", nil, false},
		"first page":          {"alice", "?catalog_name=main&schema_name=web&max_results=2", []string{"main.web.a", "main.web.b"}, true},
		// The page held bobs (left out: alice may not read it) and c, so
		// more may follow.
		"second page":           {"alice", "?catalog_name=main&schema_name=web&max_results=2&page_token=main.web.b", []string{"main.web.c"}, true},
		"last page":             {"alice", "?catalog_name=main&schema_name=web&max_results=2&page_token=main.web.c", nil, false},
		"bob sees only his own": {"bob", "?catalog_name=main&schema_name=web", []string{"main.web.bobs"}, false},
		"carol sees nothing":    {"carol", "", nil, false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			l := list(c.user, c.query)
			if got := names(l); !slices.Equal(got, c.want) {
				t.Errorf("streams = %v, want %v", got, c.want)
			}
			if (l.NextPageToken != "") != c.token {
				t.Errorf("next_page_token = %q, want set: %v", l.NextPageToken, c.token)
			}
		})
	}
	t.Run("paging", func(t *testing.T) {
		var all []string
		token := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			l := list("alice", "?max_results=1&page_token="+url.QueryEscape(token))
			all = append(all, names(l)...)
			if token = l.NextPageToken; token == "" {
				break
			}
		}
		if want := []string{"main.other.x", "main.web.a", "main.web.b", "main.web.c", "zz.web.z"}; !slices.Equal(all, want) {
			t.Errorf("paged through %v, want %v", all, want)
		}
	})
	t.Run("include_schemas", func(t *testing.T) {
		for q, want := range map[string]bool{"": false, "&include_schemas=false": false, "&include_schemas=true": true} {
			r := mustCall(t, base, "alice", "GET", "/api/v1/streams?catalog_name=main&schema_name=web"+q, nil, 200)
			if got := bytes.Contains(r.body, []byte("json_schema")); got != want {
				t.Errorf("%q: schemas in the list: %v, want %v:\n%s", q, got, want, r.body)
			}
		}
		// GET of one stream always has them.
		r := mustCall(t, base, "alice", "GET", "/api/v1/streams/main.web.a", nil, 200)
		if !bytes.Contains(r.body, []byte(`"zeta"`)) {
			t.Errorf("GET stream has no schema: %s", r.body)
		}
	})
}

func TestAccessControl(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	base, addr := n.URL(), n.BrokerAddr()
	mustCall(t, base, "alice", "POST", "/api/v1/topics", map[string]any{"name": "clicks", "partitions": 1}, http.StatusCreated)
	mustCall(t, base, "alice", "POST", "/api/v1/streams",
		clicksSpec("main.web.clicks", "clicks", "main.web.clicks_ingestion", addr), http.StatusCreated)

	mustCall(t, base, "alice", "GET", "/api/v1/streams/main.web.clicks", nil, 200)
	mustCall(t, base, "alice", "GET", "/api/v1/tables/main.web.clicks_ingestion/rows", nil, 200)
	denied := map[string]struct{ method, path string }{
		"get stream":          {"GET", "/api/v1/streams/main.web.clicks"},
		"delete stream":       {"DELETE", "/api/v1/streams/main.web.clicks"},
		"describe table":      {"GET", "/api/v1/tables/main.web.clicks_ingestion"},
		"table rows":          {"GET", "/api/v1/tables/main.web.clicks_ingestion/rows"},
		"quarantine rows":     {"GET", "/api/v1/tables/main.web.clicks_ingestion_quarantine/rows"},
		"optimize":            {"POST", "/api/v1/tables/main.web.clicks_ingestion/optimize"},
		"optimize quarantine": {"POST", "/api/v1/tables/main.web.clicks_ingestion_quarantine/optimize"},
	}
	for name, c := range denied {
		t.Run(name, func(t *testing.T) {
			r := call(t, base, "bob", c.method, c.path, nil)
			if r.status != 403 {
				t.Fatalf("bob: %s %s: status %d, want 403: %s", c.method, c.path, r.status, r.body)
			}
			code, msg, _ := r.errorBody(t)
			if code != "PERMISSION_DENIED" || !strings.Contains(msg, `"bob"`) || !strings.Contains(msg, "main.web.clicks_ingestion") {
				t.Errorf("code %q message %q: want PERMISSION_DENIED naming bob and the table", code, msg)
			}
		})
	}
	var l streamListJSON
	mustCall(t, base, "bob", "GET", "/api/v1/streams?catalog_name=main&schema_name=web", nil, 200).decode(t, &l)
	if len(l.Streams) != 0 {
		t.Errorf("bob lists %v", names(l))
	}

	// Bob's refused delete changed nothing; alice's deletes the stream
	// and both tables.
	r := mustCall(t, base, "alice", "DELETE", "/api/v1/streams/main.web.clicks", nil, 200)
	var del map[string]string
	r.decode(t, &del)
	if del["deleted"] != "main.web.clicks" {
		t.Errorf("DELETE = %s", r.body)
	}
	for _, p := range []string{"/api/v1/streams/main.web.clicks", "/api/v1/tables/main.web.clicks_ingestion",
		"/api/v1/tables/main.web.clicks_ingestion_quarantine", "/api/v1/tables/main.web.clicks_ingestion/rows"} {
		r := call(t, base, "alice", "GET", p, nil)
		if r.status != 404 {
			t.Errorf("GET %s after delete: status %d, want 404: %s", p, r.status, r.body)
		}
	}
	var tl struct{ Tables []string }
	mustCall(t, base, "alice", "GET", "/api/v1/tables?catalog_name=main&schema_name=web", nil, 200).decode(t, &tl)
	if len(tl.Tables) != 0 {
		t.Errorf("tables after delete: %v", tl.Tables)
	}
	mustCall(t, base, "alice", "DELETE", "/api/v1/streams/main.web.clicks", nil, 404)
	// The name and destination are free again.
	mustCall(t, base, "alice", "POST", "/api/v1/streams",
		clicksSpec("main.web.clicks", "clicks", "main.web.clicks_ingestion", addr), http.StatusCreated)
}

func TestTablesRowsOptimizeMetrics(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	base, addr := n.URL(), n.BrokerAddr()
	api := sluicetest.NewClient(base, "alice")
	api.MustCreateTopic(t, "clicks", 1)
	api.MustCreateStream(t, clicksSpec("main.web.clicks", "clicks", "main.web.clicks_ingestion", addr))
	produce(t, addr, "clicks",
		`k1:{"zeta":"z1","alpha":1,"mid":{"y":true,"b":"x"}}`,
		`k2:{"mid":{"b":"only b"},"zeta":"z2"}`,
		`k3:{"zeta":"z3","alpha":"one"}`)
	sluicetest.Eventually(t, 30*time.Second, "ingesting 2 rows and quarantining 1", func() (bool, string) {
		ing, err1 := api.Table(t.Context(), "main.web.clicks_ingestion")
		q, err2 := api.Table(t.Context(), "main.web.clicks_ingestion_quarantine")
		if err1 != nil || err2 != nil {
			return false, fmt.Sprint(err1, err2)
		}
		return ing.Rows == 2 && q.Rows == 1, fmt.Sprintf("%d rows, %d quarantined", ing.Rows, q.Rows)
	})

	t.Run("list", func(t *testing.T) {
		var tl struct{ Tables []string }
		mustCall(t, base, "alice", "GET", "/api/v1/tables?catalog_name=main&schema_name=web", nil, 200).decode(t, &tl)
		if !sameSet(tl.Tables, []string{"main.web.clicks_ingestion", "main.web.clicks_ingestion_quarantine"}) {
			t.Errorf("tables = %v", tl.Tables)
		}
	})
	t.Run("describe", func(t *testing.T) {
		var ti struct {
			Name    string
			Columns []struct{ Name, Type string }
			Rows    int64
			Stream  string
			// snapshot_properties
			SnapshotProperties map[string]string `json:"snapshot_properties"`
			DataFiles          int               `json:"data_files"`
			SnapshotID         int64             `json:"snapshot_id"`
		}
		mustCall(t, base, "alice", "GET", "/api/v1/tables/main.web.clicks_ingestion", nil, 200).decode(t, &ti)
		var cols []string
		for _, c := range ti.Columns {
			cols = append(cols, c.Name)
		}
		if want := []string{"key", "value", "stream_record_timestamp", "kafka_topic", "kafka_partition", "kafka_offset", "record_source"}; !slices.Equal(cols, want) {
			t.Errorf("columns = %v, want %v", cols, want)
		}
		if ti.Name != "main.web.clicks_ingestion" || ti.Rows != 2 || ti.Stream != "main.web.clicks" || ti.DataFiles < 1 || ti.SnapshotID == 0 {
			t.Errorf("table = %+v", ti)
		}
		if got := ti.SnapshotProperties["sluice.offsets"]; got != `{"clicks":{"0":3}}` {
			t.Errorf("sluice.offsets = %q, want the next offset after all three records", got)
		}
	})
	t.Run("rows", func(t *testing.T) {
		r := mustCall(t, base, "alice", "GET", "/api/v1/tables/main.web.clicks_ingestion/rows?limit=10", nil, 200)
		var compact bytes.Buffer
		if err := json.Compact(&compact, r.body); err != nil {
			t.Fatal(err)
		}
		raw := compact.String()
		// Columns and rows in column order; struct fields in schema order
		// (zeta, alpha, mid; y before b), in the JSON text itself.
		for _, want := range []string{
			`"columns":[{"name":"key","type":"utf8"},{"name":"value","type":"struct<zeta: utf8 nullable, alpha: int64 nullable, mid: struct<y: bool nullable, b: utf8 nullable> nullable>"},{"name":"stream_record_timestamp",`,
			`["k1",{"zeta":"z1","alpha":1,"mid":{"y":true,"b":"x"}},"`,
			`["k2",{"zeta":"z2","alpha":null,"mid":{"y":null,"b":"only b"}},"`,
			`"clicks",0,0,"stream"]`, `"clicks",0,1,"stream"]`,
		} {
			if !strings.Contains(raw, want) {
				t.Errorf("rows do not contain %s:\n%s", want, raw)
			}
		}
		var rows sluicetest.Rows
		r.decode(t, &rows)
		for _, m := range rows.Maps() {
			ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["stream_record_timestamp"]))
			if err != nil || ts.Location() != time.UTC || time.Since(ts) > time.Hour {
				t.Errorf("stream_record_timestamp %v is not a recent RFC 3339 UTC time: %v", m["stream_record_timestamp"], err)
			}
		}
	})
	t.Run("limits", func(t *testing.T) {
		for q, want := range map[string]int{"": 2, "?limit=1": 1, "?limit=0": 0, "?limit=100000": 2} {
			var rows sluicetest.Rows
			mustCall(t, base, "alice", "GET", "/api/v1/tables/main.web.clicks_ingestion/rows"+q, nil, 200).decode(t, &rows)
			if len(rows.Rows) != want {
				t.Errorf("rows%s: %d rows, want %d", q, len(rows.Rows), want)
			}
		}
		for _, q := range []string{"?limit=-1", "?limit=ten", "?limit=100001", "?limit=1.5"} {
			r := call(t, base, "alice", "GET", "/api/v1/tables/main.web.clicks_ingestion/rows"+q, nil)
			if r.status != 400 {
				t.Errorf("rows%s: status %d, want 400: %s", q, r.status, r.body)
				continue
			}
			if code, msg, _ := r.errorBody(t); code != "INVALID_ARGUMENT" || !strings.Contains(msg, "limit") {
				t.Errorf("rows%s: %s %q", q, code, msg)
			}
		}
	})
	t.Run("quarantine", func(t *testing.T) {
		rows := api.MustRows(t, "main.web.clicks_ingestion_quarantine", 10)
		m := rows.Maps()
		if len(m) != 1 {
			t.Fatalf("quarantine rows = %v", m)
		}
		b64 := base64.StdEncoding.EncodeToString
		if m[0]["raw_key"] != b64([]byte("k3")) || m[0]["raw_value"] != b64([]byte(`{"zeta":"z3","alpha":"one"}`)) ||
			!strings.Contains(fmt.Sprint(m[0]["reason"]), "value.alpha") {
			t.Errorf("quarantined row = %v", m[0])
		}
	})
	t.Run("optimize", func(t *testing.T) {
		var st map[string]int
		mustCall(t, base, "alice", "POST", "/api/v1/tables/main.web.clicks_ingestion/optimize", nil, 200).decode(t, &st)
		for _, k := range []string{"files_before", "files_after", "snapshots_expired", "orphans_removed"} {
			if _, ok := st[k]; !ok {
				t.Errorf("optimize stats %v lack %s", st, k)
			}
		}
		if st["files_before"] < 1 || st["files_after"] < 1 || st["files_after"] > st["files_before"] {
			t.Errorf("optimize stats = %v", st)
		}
		// Still two rows, offsets carried forward.
		tbl, err := api.Table(t.Context(), "main.web.clicks_ingestion")
		if err != nil || tbl.Rows != 2 || tbl.SnapshotProperties["sluice.offsets"] != `{"clicks":{"0":3}}` {
			t.Errorf("after optimize: %+v, %v", tbl, err)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		r := mustCall(t, base, "", "GET", "/metrics", nil, 200)
		for _, want := range []string{
			`sluice_ingest_records_total{stream="main.web.clicks"} 2`,
			`sluice_ingest_quarantined_records_total{stream="main.web.clicks"} 1`,
			"sluice_ingest_commits_total", "sluice_ingest_commit_duration_seconds", "go_goroutines",
		} {
			if !bytes.Contains(r.body, []byte(want)) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

func TestTopics(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	base := n.URL()
	r := mustCall(t, base, "alice", "POST", "/api/v1/topics", map[string]any{"name": "orders", "partitions": 3}, 201)
	var created struct {
		Name       string `json:"name"`
		Partitions int    `json:"partitions"`
	}
	r.decode(t, &created)
	if created.Name != "orders" || created.Partitions != 3 {
		t.Errorf("created = %s", r.body)
	}
	mustCall(t, base, "alice", "POST", "/api/v1/topics", map[string]any{"name": "one"}, 201)

	r = call(t, base, "alice", "POST", "/api/v1/topics", map[string]any{"name": "orders", "partitions": 3})
	if r.status != 409 {
		t.Fatalf("duplicate topic: status %d, want 409: %s", r.status, r.body)
	}
	if code, msg, _ := r.errorBody(t); code != "ALREADY_EXISTS" || !strings.Contains(msg, "orders") {
		t.Errorf("duplicate topic: %s %q", code, msg)
	}

	produce(t, n.BrokerAddr(), "orders", "a:1", "b:2")
	var l struct {
		Topics []struct {
			Name       string
			Partitions []struct{ Partition, StartOffset, EndOffset int64 }
			Records    int64
		}
	}
	mustCall(t, base, "alice", "GET", "/api/v1/topics", nil, 200).decode(t, &l)
	got := map[string]string{}
	for _, tp := range l.Topics {
		got[tp.Name] = fmt.Sprintf("%v records=%d", tp.Partitions, tp.Records)
	}
	want := map[string]string{
		"one":    "[{0 0 0}] records=0",
		"orders": "[{0 0 2} {1 0 0} {2 0 0}] records=2",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("topics = %v, want %v", got, want)
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	base := n.URL()
	const value = "s3cr3t-Value-9f2c"
	r := mustCall(t, base, "alice", "PUT", "/api/v1/secrets/kafka/key_password", map[string]string{"value": value}, 200)
	if bytes.Contains(r.body, []byte(value)) {
		t.Errorf("PUT echoes the value: %s", r.body)
	}
	mustCall(t, base, "alice", "PUT", "/api/v1/secrets/other/token", map[string]string{"value": value + "-2"}, 200)
	// Overwriting is allowed.
	mustCall(t, base, "alice", "PUT", "/api/v1/secrets/kafka/key_password", map[string]string{"value": value}, 200)

	type secretInfo struct {
		Scope, Key string
		CreatedAt  time.Time `json:"created_at"`
	}
	list := func(q string) []string {
		t.Helper()
		r := mustCall(t, base, "alice", "GET", "/api/v1/secrets"+q, nil, 200)
		if bytes.Contains(r.body, []byte(value)) || bytes.Contains(r.body, []byte(base64.StdEncoding.EncodeToString([]byte(value)))) {
			t.Errorf("GET /api/v1/secrets%s shows the value: %s", q, r.body)
		}
		var l struct{ Secrets []secretInfo }
		r.decode(t, &l)
		var out []string
		for _, s := range l.Secrets {
			if s.CreatedAt.IsZero() {
				t.Errorf("secret %s/%s has no created_at: %s", s.Scope, s.Key, r.body)
			}
			out = append(out, s.Scope+"/"+s.Key)
		}
		return out
	}
	if got := list(""); !sameSet(got, []string{"kafka/key_password", "other/token"}) {
		t.Errorf("secrets = %v", got)
	}
	if got := list("?scope=kafka"); !slices.Equal(got, []string{"kafka/key_password"}) {
		t.Errorf("secrets of scope kafka = %v", got)
	}
	mustCall(t, base, "alice", "DELETE", "/api/v1/secrets/kafka/key_password", nil, 200)
	if got := list(""); !slices.Equal(got, []string{"other/token"}) {
		t.Errorf("secrets after delete = %v", got)
	}
	r = call(t, base, "alice", "DELETE", "/api/v1/secrets/kafka/key_password", nil)
	if r.status != 404 {
		t.Fatalf("deleting a missing secret: status %d, want 404: %s", r.status, r.body)
	}
	if code, _, _ := r.errorBody(t); code != "NOT_FOUND" {
		t.Errorf("deleting a missing secret: code %s", code)
	}
	if got := list("?scope=nope"); len(got) != 0 {
		t.Errorf("secrets of an unknown scope = %v", got)
	}

	// A scope belongs to whoever stored its first secret: bob can neither
	// overwrite, delete, list nor use alice's secrets.
	for _, c := range []struct{ method, path string }{
		{"PUT", "/api/v1/secrets/other/token"},
		{"PUT", "/api/v1/secrets/other/new_key"},
		{"DELETE", "/api/v1/secrets/other/token"},
	} {
		var body any
		if c.method == "PUT" {
			body = map[string]string{"value": "bob's"}
		}
		if r := call(t, base, "bob", c.method, c.path, body); r.status != 403 {
			t.Errorf("bob %s %s: status %d, want 403: %s", c.method, c.path, r.status, r.body)
		}
	}
	r = mustCall(t, base, "bob", "GET", "/api/v1/secrets", nil, 200)
	if bytes.Contains(r.body, []byte("other")) {
		t.Errorf("bob lists alice's scope: %s", r.body)
	}
	spec := `{name: main.web.s, source: {kafka: {subscribe: t}}, connection: {bootstrap_servers: "` + n.BrokerAddr() + `",
  mtls: {ca_file: /x, cert_file: /y, key_file: /z, key_password_ref: {scope: other, key: token}}}, ingestion: {destination: main.web.s_ingestion}}`
	r = call(t, base, "bob", "POST", "/api/v1/streams", spec)
	if code, _, field := r.errorBody(t); r.status != 403 || field != "connection.mtls.key_password_ref" {
		t.Errorf("bob using alice's secret: status %d code %s field %s", r.status, code, field)
	}
	// bob's own scope is his.
	mustCall(t, base, "bob", "PUT", "/api/v1/secrets/bobs/token", map[string]string{"value": "b"}, 200)
}
