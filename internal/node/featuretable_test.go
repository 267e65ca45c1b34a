package node_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// TestPlainFeatureTable creates a feature table through the API, merges
// rows into it twice (a row with stored keys replaces the stored row), and
// serves it online: the write path of the seed's create_table and
// write_table(mode="merge").
func TestPlainFeatureTable(t *testing.T) {
	n := sluicetest.StartNode(t)
	ctx := sluicetest.Context(t)
	api := sluicetest.NewClient(n.URL(), "alice")

	for _, c := range []struct {
		spec map[string]any
		want string
	}{
		{map[string]any{"name": "main.features.p", "primary_keys": []string{"user_id"}, "schema": "user_id STRING, tier STRING", "colour": "red"}, "field colour not found"},
		{map[string]any{"name": "main.features.p", "primary_keys": []string{"uid"}, "schema": "user_id STRING, tier STRING"}, `primary key "uid" is not a column`},
		{map[string]any{"name": "main.features.p", "primary_keys": []string{"user_id"}, "timestamp_key": "tier", "schema": "user_id STRING, tier STRING"}, "must be a TIMESTAMP or DATE"},
		{map[string]any{"name": "p", "primary_keys": []string{"user_id"}, "schema": "user_id STRING, tier STRING"}, "three-part"},
		{map[string]any{"name": "main.features.p", "primary_keys": []string{"user_id"}, "schema": "user_id STRING, tier STRING", "ttl": "7d"},
			"main.features.p: ttl needs a timestamp key: set timestamp_key"},
	} {
		var out map[string]any
		if err := api.Do(ctx, "POST", "/api/v1/feature-tables", c.spec, 400, &out); err != nil {
			t.Fatalf("%v: %v", c.spec, err)
		}
		if !strings.Contains(fmt.Sprint(out), c.want) {
			t.Errorf("%v: error %v, want it to say %q", c.spec, out, c.want)
		}
	}

	var info struct {
		Name     string   `json:"name"`
		Keys     []string `json:"keys"`
		Online   bool     `json:"online"`
		Windowed bool     `json:"windowed"`
	}
	spec := map[string]any{"name": "main.features.user_profile", "primary_keys": []string{"user_id"},
		"schema": "user_id STRING, account_age_days BIGINT, subscription_tier STRING", "online": true}
	if err := api.Do(ctx, "POST", "/api/v1/feature-tables", spec, 201, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != "main.features.user_profile" || !info.Online || info.Windowed || fmt.Sprint(info.Keys) != "[user_id]" {
		t.Fatalf("created %+v", info)
	}
	if err := api.Do(ctx, "POST", "/api/v1/feature-tables", spec, 409, nil); err != nil {
		t.Fatalf("creating it again: %v", err)
	}
	write := func(rows string, want int) {
		t.Helper()
		var out struct {
			Rows   int64 `json:"rows_written"`
			Synced bool  `json:"synced_online"`
		}
		if err := api.Do(ctx, "POST", "/api/v1/feature-tables/main.features.user_profile/rows", map[string]any{"rows": jsonRaw(rows)}, want, &out); err != nil {
			t.Fatal(err)
		}
		if want == 200 && !out.Synced {
			t.Fatalf("write %s: not synced online", rows)
		}
	}
	write(`[{"user_id":"u1","account_age_days":10,"subscription_tier":"free"},{"user_id":"u2","account_age_days":20,"subscription_tier":"pro"}]`, 200)
	write(`[{"user_id":"u1","account_age_days":11,"subscription_tier":"pro"}]`, 200)
	write(`[{"account_age_days":11}]`, 400)                   // no key
	write(`[{"user_id":"u3","account_age_days":"old"}]`, 400) // wrong type
	write(`[]`, 400)

	rows := api.MustRows(t, "main.features.user_profile", 10)
	if len(rows.Rows) != 2 {
		t.Fatalf("the table holds %d rows, want 2 (u1 replaced): %v", len(rows.Rows), rows.Rows)
	}
	res := getOnlineFeatures(t, api, "user_id", []string{"u1", "u2", "u9"},
		"main.features.user_profile:account_age_days", "main.features.user_profile:subscription_tier")
	got := fmt.Sprint(res[1].Values, res[2].Values, res[1].Statuses)
	if want := "[11 20 <nil>] [pro pro <nil>] [PRESENT PRESENT NOT_FOUND]"; got != want {
		t.Fatalf("served %s, want %s", got, want)
	}

	// A table that a pipeline writes takes no rows from the API.
	sql := `CREATE MATERIALIZED VIEW main.features.mv (PRIMARY KEY (user_id)) AS SELECT user_id, account_age_days FROM main.features.user_profile;`
	if err := api.Do(ctx, "POST", "/api/v1/pipelines", map[string]any{"name": "main.features.mvp", "sql": sql, "trigger": "available-now"}, 200, nil); err != nil {
		t.Fatal(err)
	}
	sluicetest.Eventually(t, 30*time.Second, "the view", func() (bool, string) {
		var info struct{ State string }
		_ = api.Do(ctx, "GET", "/api/v1/pipelines/main.features.mvp", nil, 200, &info)
		return info.State == "completed", info.State
	})
	var out map[string]any
	if err := api.Do(ctx, "POST", "/api/v1/feature-tables/main.features.mv/rows", map[string]any{"rows": jsonRaw(`[{"user_id":"u1","account_age_days":1}]`)}, 400, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(out), "written by its pipeline") {
		t.Fatalf("write to a pipeline's table: %v", out)
	}
}

func jsonRaw(s string) json.RawMessage { return json.RawMessage(s) }
