package node_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/redis/rueidis"

	"github.com/sluice-dev/sluice/internal/feature"
	"github.com/sluice-dev/sluice/internal/node"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/server"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// onlineStores are the online stores the serving tests run against: each
// returns the value of node.Options.Online (`sluice up --online`) that
// selects a fresh store of its kind. Redis runs in a private redis-server,
// skipped without one (failed under CI=true), as in internal/online.
var onlineStores = map[string]func(testing.TB) string{
	"embedded": func(testing.TB) string { return "" },
	"redis":    sluicetest.RedisServer,
}

// startOnlineNode starts a node with the online store url (see
// onlineStores) and checks that the node opened that kind of store.
func startOnlineNode(t *testing.T, url string) *node.Node {
	t.Helper()
	n := sluicetest.StartNode(t, func(o *node.Options) { o.Online = url })
	if _, isRedis := n.Online.(*online.Redis); isRedis != (url != "") {
		t.Fatalf("--online %q opened a %T", url, n.Online)
	}
	return n
}

// redisRows counts the rows of online table name held by the Redis at
// url: the hashes under the node's key prefix (online.RedisOptions, default
// "sluice:online:") whose key holds the table's name (online.Redis).
func redisRows(t *testing.T, url, name string) int {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, err := c.Do(sluicetest.Context(t), c.B().Keys().Pattern("sluice:online:*"+name+"*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// TestOnlineServing runs the path from a stream to feature serving, with
// each online store (as `sluice up --online` selects it): a pipeline
// writes a feature table marked online, which is synced to the online
// store as it commits, and /get-online-features answers with Feast's
// response shape.
func TestOnlineServing(t *testing.T) {
	for name, store := range onlineStores {
		t.Run(name, func(t *testing.T) { testOnlineServing(t, store(t)) })
	}
}

// testOnlineServing is TestOnlineServing with the online store url ("" for
// the embedded one, else a Redis URL).
func testOnlineServing(t *testing.T, url string) {
	n := startOnlineNode(t, url)
	api := sluicetest.NewClient(n.URL(), "alice")
	api.MustCreateTopic(t, "events", 1)
	api.MustCreateStream(t, fmt.Sprintf(`
name: main.f.events
source: {kafka: {subscribe: events}}
connection: {bootstrap_servers: %s}
schema:
  payload:
    json_schema:
      type: object
      properties:
        user_id:  {type: string}
        revenue:  {type: number}
        platform: {type: string}
        ts:       {type: string, format: date-time}
ingestion: {destination: main.f.events_ingestion, commit_interval: 100ms}
`, n.BrokerAddr()))
	sluicetest.Produce(t, n.BrokerAddr(), "events", time.Time{},
		`u1:{"user_id":"u1","revenue":5,"platform":"ios","ts":"2026-11-23T10:00:00Z"}`,
		`u1:{"user_id":"u1","revenue":7,"platform":"web","ts":"2026-11-23T10:05:00Z"}`,
		`u1:{"user_id":"u1","revenue":1,"platform":"old","ts":"2026-11-23T09:00:00Z"}`,
		`u2:{"user_id":"u2","revenue":3.5,"platform":"android","ts":"2026-11-23T10:01:00Z"}`,
	)
	sluicetest.Eventually(t, 30*time.Second, "4 rows ingested", func() (bool, string) {
		s := api.MustStream(t, "main.f.events")
		return s.Status.RowsIngested == 4, fmt.Sprint(s.Status.RowsIngested)
	})
	sql := `CREATE STREAMING TABLE main.f.user_latest (PRIMARY KEY (user_id, ts TIMESERIES))
TBLPROPERTIES ('online' = 'true') AS
SELECT value.user_id AS user_id, value.ts AS ts, value.revenue AS revenue, value.platform AS platform
FROM STREAM(main.f.events_ingestion);`
	if err := api.Do(sluicetest.Context(t), "POST", "/api/v1/pipelines", map[string]any{"name": "main.f.features", "sql": sql}, 200, nil); err != nil {
		t.Fatal(err)
	}
	sluicetest.Eventually(t, 30*time.Second, "the pipeline completing", func() (bool, string) {
		var info struct{ State, Error string }
		if err := api.Do(sluicetest.Context(t), "GET", "/api/v1/pipelines/main.f.features", nil, 200, &info); err != nil {
			return false, err.Error()
		}
		if info.State == "failed" {
			t.Fatalf("pipeline failed: %s", info.Error)
		}
		return info.State == "completed", info.State
	})

	var resp server.OnlineFeaturesResponse
	req := map[string]any{
		"features": []string{"main.f.user_latest:revenue", "main.f.user_latest:platform"},
		"entities": map[string]any{"user_id": []string{"u1", "u2", "nobody"}},
	}
	if err := api.Do(sluicetest.Context(t), "POST", "/get-online-features", req, 200, &resp); err != nil {
		t.Fatal(err)
	}
	if want := []string{"user_id", "revenue", "platform"}; !slices.Equal(resp.Metadata.FeatureNames, want) {
		t.Fatalf("feature names %v, want %v", resp.Metadata.FeatureNames, want)
	}
	got := fmt.Sprint(resp.Results[1].Values, resp.Results[1].Statuses, resp.Results[2].Values, resp.Results[2].EventTimestamps)
	want := fmt.Sprint([]any{7.0, 3.5, nil}, []string{"PRESENT", "PRESENT", "NOT_FOUND"},
		[]any{"web", "android", nil}, []string{"2026-11-23T10:05:00Z", "2026-11-23T10:01:00Z", "1970-01-01T00:00:00Z"})
	if got != want {
		t.Fatalf("served\n%s\nwant\n%s", got, want)
	}
	// The pipeline's sync went to Redis: one hash per entity (u1, u2).
	if url != "" {
		if got := redisRows(t, url, "main.f.user_latest"); got != 2 {
			t.Fatalf("Redis holds %d rows of main.f.user_latest after the pipeline's sync, want 2", got)
		}
	}

	// Clear errors for unknown features and missing entity keys.
	for _, bad := range []map[string]any{
		{"features": []string{"main.f.user_latest:nope"}, "entities": map[string]any{"user_id": []string{"u1"}}},
		{"features": []string{"main.f.user_latest:revenue"}, "entities": map[string]any{"customer": []string{"u1"}}},
		{"features": []string{"main.f.events_ingestion:value"}, "entities": map[string]any{"user_id": []string{"u1"}}},
	} {
		if err := api.Do(sluicetest.Context(t), "POST", "/get-online-features", bad, http.StatusBadRequest, nil); err != nil {
			t.Errorf("%v: %v", bad, err)
		}
	}
	// A feature table published after its pipeline ran: served from then
	// on, and kept in sync by later pipeline commits.
	sql2 := `CREATE STREAMING TABLE main.f.user_platform (PRIMARY KEY (user_id, ts TIMESERIES)) AS
SELECT value.user_id AS user_id, value.ts AS ts, value.platform AS platform FROM STREAM(main.f.events_ingestion);`
	runPipeline := func() {
		t.Helper()
		if err := api.Do(sluicetest.Context(t), "POST", "/api/v1/pipelines", map[string]any{"name": "main.f.later", "sql": sql2}, 200, nil); err != nil {
			t.Fatal(err)
		}
		sluicetest.Eventually(t, 30*time.Second, "the second pipeline completing", func() (bool, string) {
			var info struct{ State, Error string }
			if err := api.Do(sluicetest.Context(t), "GET", "/api/v1/pipelines/main.f.later", nil, 200, &info); err != nil {
				return false, err.Error()
			}
			return info.State == "completed", info.State + " " + info.Error
		})
	}
	platformOf := func(user string) (any, string) {
		t.Helper()
		var r server.OnlineFeaturesResponse
		req := map[string]any{"features": []string{"main.f.user_platform:platform"}, "entities": map[string]any{"user_id": []string{user}}}
		if err := api.Do(sluicetest.Context(t), "POST", "/get-online-features", req, 200, &r); err != nil {
			t.Fatal(err)
		}
		return r.Results[1].Values[0], r.Results[1].Statuses[0]
	}
	runPipeline()
	if v, st := platformOf("u2"); st != "NOT_FOUND" {
		t.Fatalf("an unpublished table is served: %v %s", v, st)
	}
	if err := api.Do(sluicetest.Context(t), "POST", "/api/v1/feature-tables/main.f.user_platform/publish", nil, 200, nil); err != nil {
		t.Fatal(err)
	}
	if v, st := platformOf("u2"); v != "android" || st != "PRESENT" {
		t.Fatalf("after publish: %v %s", v, st)
	}
	if url != "" {
		if got := redisRows(t, url, "main.f.user_platform"); got != 2 {
			t.Fatalf("Redis holds %d rows of main.f.user_platform after publish, want 2", got)
		}
	}
	sluicetest.Produce(t, n.BrokerAddr(), "events", time.Time{},
		`u2:{"user_id":"u2","revenue":1,"platform":"tv","ts":"2026-11-23T11:00:00Z"}`)
	sluicetest.Eventually(t, 30*time.Second, "5 rows ingested", func() (bool, string) {
		s := api.MustStream(t, "main.f.events")
		return s.Status.RowsIngested == 5, fmt.Sprint(s.Status.RowsIngested)
	})
	runPipeline()
	if v, st := platformOf("u2"); v != "tv" || st != "PRESENT" {
		t.Fatalf("a published table's next pipeline commit was not synced: %v %s", v, st)
	}

	// A model logged against a training set is served by keys alone.
	tsReq := map[string]any{"name": "ts_latest", "spec": map[string]any{
		"labels": "main.f.user_latest", "timestamp_column": "ts", "exclude_columns": []string{"revenue", "platform"},
		"lookups": []map[string]any{{"table": "main.f.user_latest", "lookup_key": "user_id", "features": []string{"revenue", "platform"}}},
	}}
	if err := api.Do(sluicetest.Context(t), "POST", "/api/v1/training-sets", tsReq, 201, nil); err != nil {
		t.Fatal(err)
	}
	if err := api.Do(sluicetest.Context(t), "POST", "/api/v1/models", map[string]any{"name": "churn", "training_set": "ts_latest"}, 201, nil); err != nil {
		t.Fatal(err)
	}
	var inv server.InvocationsResponse
	if err := api.Do(sluicetest.Context(t), "POST", "/api/v1/serving/churn/invocations",
		map[string]any{"dataframe_records": []map[string]any{{"user_id": "u1"}, {"user_id": "nobody"}}}, 200, &inv); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(inv.Outputs), fmt.Sprint([]map[string]any{
		{"platform": "web", "revenue": 7.0, "user_id": "u1"}, {"platform": nil, "revenue": nil, "user_id": "nobody"},
	}); got != want {
		t.Fatalf("invocations: %s, want %s", got, want)
	}
	for path, want := range map[string]int{"/api/v1/serving/nope/invocations": 404, "/api/v1/serving/churn/invocations": 400} {
		if err := api.Do(sluicetest.Context(t), "POST", path, map[string]any{"dataframe_records": []map[string]any{{"customer": "u1"}}}, want, nil); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}

	// The triggered sync has nothing left to do.
	var st struct {
		Rows int64 `json:"rows_written"`
	}
	if err := api.Do(sluicetest.Context(t), "POST", "/api/v1/feature-tables/main.f.user_latest/sync", nil, 200, &st); err != nil || st.Rows != 0 {
		t.Fatalf("sync after the pipeline's: %+v, %v", st, err)
	}

	// The online store emptied behind the catalog's back (a FLUSHDB): a
	// sync cannot tell, a full one writes the table again.
	if err := n.Online.DeleteTable(sluicetest.Context(t), "main.f.user_latest"); err != nil {
		t.Fatal(err)
	}
	u1 := func() string {
		r := getOnlineFeatures(t, api, "user_id", []string{"u1"}, "main.f.user_latest:revenue")
		return r[1].Statuses[0]
	}
	if got := u1(); got != "NOT_FOUND" {
		t.Fatalf("u1 after the online store was emptied: %s", got)
	}
	if err := api.Do(sluicetest.Context(t), "POST", "/api/v1/feature-tables/main.f.user_latest/sync", nil, 200, &st); err != nil || st.Rows != 0 {
		t.Fatalf("sync after the online store was emptied: %+v, %v", st, err)
	}
	if err := api.Do(sluicetest.Context(t), "POST", "/api/v1/feature-tables/main.f.user_latest/sync?full=yes", nil, 400, nil); err != nil {
		t.Fatal(err)
	}
	if err := api.Do(sluicetest.Context(t), "POST", "/api/v1/feature-tables/main.f.user_latest/sync?full=true", nil, 200, &st); err != nil || st.Rows == 0 {
		t.Fatalf("full sync: %+v, %v", st, err)
	}
	if got := u1(); got != "PRESENT" {
		t.Fatalf("u1 after a full sync: %s", got)
	}
}

// TestOnlineServingTrainingSetNames checks that a logged model is served
// its features under exactly the column names of its training set's
// Parquet file: a lookup's rename (account_age_days → age), the table
// prefix a clash with a label column gives (platform →
// user_profile__platform), and the prefix a clash between two lookups
// gives (tier). Names derived again at serving time would differ, and a
// model served online would see other columns than it was trained on.
func TestOnlineServingTrainingSetNames(t *testing.T) {
	n := sluicetest.StartNode(t)
	ctx := sluicetest.Context(t)
	api := sluicetest.NewClient(n.URL(), "alice")
	dir := t.TempDir()

	createAndWrite := func(spec map[string]any, rows string) {
		t.Helper()
		if err := api.Do(ctx, "POST", "/api/v1/feature-tables", spec, 201, nil); err != nil {
			t.Fatal(err)
		}
		if err := api.Do(ctx, "POST", "/api/v1/feature-tables/"+spec["name"].(string)+"/rows", map[string]any{"rows": jsonRaw(rows)}, 200, nil); err != nil {
			t.Fatal(err)
		}
	}
	createAndWrite(map[string]any{"name": "main.features.user_profile", "primary_keys": []string{"user_id"}, "online": true,
		"schema": "user_id STRING, account_age_days BIGINT, platform STRING, tier STRING"},
		`[{"user_id":"u1","account_age_days":11,"platform":"ios","tier":"pro"},{"user_id":"u2","account_age_days":20,"platform":"web","tier":"free"}]`)
	createAndWrite(map[string]any{"name": "main.features.user_activity", "primary_keys": []string{"user_id"}, "online": true,
		"schema": "user_id STRING, revenue_1h DOUBLE, tier STRING"},
		`[{"user_id":"u1","revenue_1h":7.5,"tier":"gold"}]`)
	createAndWrite(map[string]any{"name": "main.ml.churn_labels", "primary_keys": []string{"user_id", "event_ts"}, "timestamp_key": "event_ts",
		"schema": "user_id STRING, event_ts TIMESTAMP, churn_label BIGINT, platform STRING"},
		`[{"user_id":"u1","event_ts":"2026-11-23T10:00:00Z","churn_label":1,"platform":"android"},{"user_id":"u2","event_ts":"2026-11-23T11:00:00Z","churn_label":0,"platform":"web"}]`)

	out := filepath.Join(dir, "train.parquet")
	tsReq := map[string]any{"name": "main.ml.churn_train", "output_path": out, "spec": map[string]any{
		"labels": "main.ml.churn_labels", "timestamp_column": "event_ts", "label": "churn_label",
		"lookups": []map[string]any{
			{"table": "main.features.user_profile", "lookup_key": "user_id", "features": []string{"account_age_days", "platform", "tier"},
				"rename": map[string]string{"account_age_days": "age"}},
			{"table": "main.features.user_activity", "lookup_key": "user_id", "features": []string{"revenue_1h", "tier"}},
		},
	}}
	var tsResp server.TrainingSetResponse
	if err := api.Do(ctx, "POST", "/api/v1/training-sets", tsReq, 201, &tsResp); err != nil {
		t.Fatal(err)
	}
	cols := parquetColumns(t, out)
	labels := tsResp.TrainingSet.Plan.LabelColumns
	if want := []string{"user_id", "event_ts", "churn_label", "platform", "age", "user_profile__platform", "user_profile__tier", "revenue_1h", "user_activity__tier"}; !slices.Equal(cols, want) {
		t.Fatalf("training set columns %v, want %v", cols, want)
	}
	if !slices.Equal(cols[:len(labels)], labels) {
		t.Fatalf("training set columns %v do not start with its label columns %v", cols, labels)
	}

	if err := api.Do(ctx, "POST", "/api/v1/models", map[string]any{"name": "main.ml.churn_model", "training_set": "main.ml.churn_train"}, 201, nil); err != nil {
		t.Fatal(err)
	}
	var model feature.Model
	if err := api.Do(ctx, "GET", "/api/v1/models/main.ml.churn_model", nil, 200, &model); err != nil {
		t.Fatal(err)
	}
	var modelCols []string
	for _, mf := range model.Features {
		modelCols = append(modelCols, mf.Columns...)
	}
	if !slices.Equal(modelCols, cols[len(labels):]) {
		t.Fatalf("model columns %v, want the training set's feature columns %v", modelCols, cols[len(labels):])
	}

	var inv server.InvocationsResponse
	if err := api.Do(ctx, "POST", "/api/v1/serving/main.ml.churn_model/invocations",
		map[string]any{"dataframe_records": []map[string]any{{"user_id": "u1"}, {"user_id": "u2"}, {"user_id": "nobody"}}}, 200, &inv); err != nil {
		t.Fatal(err)
	}
	want := append([]string{"user_id"}, cols[len(labels):]...) // the record's key, then the features
	slices.Sort(want)
	for i, o := range inv.Outputs {
		var got []string
		for k := range o {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("invocation output %d has the names %v, want the training set's %v", i, got, want)
		}
	}
	if got, want := fmt.Sprint(inv.Outputs), fmt.Sprint([]map[string]any{
		{"age": 11.0, "revenue_1h": 7.5, "user_activity__tier": "gold", "user_id": "u1", "user_profile__platform": "ios", "user_profile__tier": "pro"},
		{"age": 20.0, "revenue_1h": nil, "user_activity__tier": nil, "user_id": "u2", "user_profile__platform": "web", "user_profile__tier": "free"},
		{"age": nil, "revenue_1h": nil, "user_activity__tier": nil, "user_id": "nobody", "user_profile__platform": nil, "user_profile__tier": nil},
	}); got != want {
		t.Fatalf("invocations:\n got %s\nwant %s", got, want)
	}
}

// parquetColumns returns the top-level column names of Parquet file path.
func parquetColumns(t *testing.T, path string) []string {
	t.Helper()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := fr.Schema()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range sc.Fields() {
		out = append(out, f.Name)
	}
	return out
}
