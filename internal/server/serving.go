package server

import (
	"context"
	"encoding/json"

	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/publish"
	"github.com/sluice-dev/sluice/internal/table"
)

// OnlineFeaturesRequest is the body of POST /get-online-features, as
// Feast's feature server takes it.
type OnlineFeaturesRequest struct {
	// Features are "<table>:<column>" references.
	Features []string `json:"features"`
	// Entities maps each key column to its values, one per row requested.
	Entities map[string][]any `json:"entities"`
	// FullFeatureNames names features "<table>__<column>" in the response.
	FullFeatureNames bool `json:"full_feature_names,omitempty"`
}

// OnlineFeaturesResponse is Feast's response: the entity columns first,
// then one result per requested feature, in order.
type OnlineFeaturesResponse struct {
	Metadata struct {
		FeatureNames []string `json:"feature_names"`
	} `json:"metadata"`
	Results []FeatureVector `json:"results"`
}

// FeatureVector is one column of the response: a value, status and event
// time per requested row.
type FeatureVector struct {
	Values          []any    `json:"values"`
	Statuses        []string `json:"statuses"`
	EventTimestamps []string `json:"event_timestamps"`
}

// featureTables caches feature-table descriptions for serving, so a
// request does not read the catalog.
type featureTables struct {
	mu sync.Mutex
	m  map[string]cachedTable
}

type cachedTable struct {
	ft     publish.FeatureTable
	schema *arrow.Schema
	at     time.Time
}

const featureTableCacheTTL = 5 * time.Second

func (c *featureTables) get(ctx context.Context, store *table.Store, name ident.Name) (cachedTable, error) {
	c.mu.Lock()
	ct, ok := c.m[name.String()]
	c.mu.Unlock()
	if ok && time.Since(ct.at) < featureTableCacheTTL {
		return ct, nil
	}
	t, err := store.Load(ctx, name)
	if err != nil {
		return ct, err
	}
	ft, err := publish.Describe(t)
	if err != nil {
		return ct, err
	}
	ct = cachedTable{ft: ft, schema: t.ArrowSchema(), at: time.Now()}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]cachedTable{}
	}
	c.m[name.String()] = ct
	c.mu.Unlock()
	return ct, nil
}

const epoch = "1970-01-01T00:00:00Z"

func (a *API) getOnlineFeatures(w http.ResponseWriter, r *http.Request) {
	var req OnlineFeaturesRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	resp, err := a.onlineFeatures(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	// Compact, unlike the rest of the API: this is the hot path.
	b, err := json.Marshal(resp)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func (a *API) onlineFeatures(ctx context.Context, req OnlineFeaturesRequest) (*OnlineFeaturesResponse, error) {
	if len(req.Features) == 0 {
		return nil, badRequest("features is empty: list features as \"<table>:<column>\", e.g. \"main.features.user_activity:revenue_1h\"")
	}
	if len(req.Entities) == 0 {
		return nil, badRequest("entities is empty: give each key column's values, e.g. {\"user_id\": [\"u1\", \"u2\"]}")
	}
	rows := -1
	for k, vs := range req.Entities {
		if rows >= 0 && len(vs) != rows {
			return nil, badRequest("entities: %s has %d values but another key column has %d; give every key column one value per row", k, len(vs), rows)
		}
		rows = len(vs)
	}
	// Group the features by table, keeping the request's order.
	type group struct {
		ct       cachedTable
		features []string
		slots    []int // result index of each feature
	}
	var order []string
	groups := map[string]*group{}
	resp := &OnlineFeaturesResponse{}
	var entityCols []string
	for i, ref := range req.Features {
		tname, col, ok := strings.Cut(ref, ":")
		if !ok || col == "" {
			return nil, badRequest("features[%d] = %q: write \"<table>:<column>\"", i, ref)
		}
		n, err := ident.Parse(tname)
		if err != nil {
			return nil, badRequest("features[%d] = %q: %v", i, ref, err)
		}
		g := groups[n.String()]
		if g == nil {
			ct, err := a.featureTables.get(ctx, a.d.Tables, n)
			if err != nil {
				if errors.Is(err, publish.ErrNotFeatureTable) {
					return nil, badRequest("features[%d] = %q: %v", i, ref, err)
				}
				return nil, err
			}
			for _, k := range ct.ft.Keys {
				if _, ok := req.Entities[k]; !ok {
					return nil, badRequest("feature table %s is keyed by (%s): entities must give %s", n, strings.Join(ct.ft.Keys, ", "), k)
				}
				if !contains(entityCols, k) {
					entityCols = append(entityCols, k)
				}
			}
			g = &group{ct: ct}
			groups[n.String()] = g
			order = append(order, n.String())
		}
		if !contains(g.ct.ft.Features, col) {
			return nil, badRequest("features[%d] = %q: %s has no feature %s (it has %s)", i, ref, n, col, strings.Join(g.ct.ft.Features, ", "))
		}
		g.features = append(g.features, col)
		g.slots = append(g.slots, i)
	}
	for k := range req.Entities {
		if !contains(entityCols, k) {
			return nil, badRequest("entities: %s is not a key of any requested feature table", k)
		}
	}
	// Entity columns first, as Feast returns them.
	for _, k := range entityCols {
		v := FeatureVector{Values: req.Entities[k], Statuses: make([]string, rows), EventTimestamps: make([]string, rows)}
		for i := range rows {
			v.Statuses[i], v.EventTimestamps[i] = "PRESENT", epoch
		}
		resp.Metadata.FeatureNames = append(resp.Metadata.FeatureNames, k)
		resp.Results = append(resp.Results, v)
	}
	base := len(resp.Results)
	resp.Results = append(resp.Results, make([]FeatureVector, len(req.Features))...)
	resp.Metadata.FeatureNames = append(resp.Metadata.FeatureNames, make([]string, len(req.Features))...)
	now := time.Now()
	for _, tn := range order {
		g := groups[tn]
		keys := make([]online.Key, rows)
		for row := range rows {
			key := make(online.Key, len(g.ct.ft.Keys))
			for j, k := range g.ct.ft.Keys {
				v, err := keyValue(g.ct.schema, k, req.Entities[k][row])
				if err != nil {
					return nil, badRequest("entities.%s[%d]: %v", k, row, err)
				}
				key[j] = v
			}
			keys[row] = key
		}
		res, err := a.d.Online.Get(ctx, g.ct.ft.OnlineTable(), keys, g.features, now)
		if err != nil {
			return nil, err
		}
		for fi, col := range g.features {
			slot := base + g.slots[fi]
			name := col
			if req.FullFeatureNames {
				name = tn + "__" + col
			}
			resp.Metadata.FeatureNames[slot] = name
			v := FeatureVector{Values: make([]any, rows), Statuses: make([]string, rows), EventTimestamps: make([]string, rows)}
			for row := range rows {
				v.Values[row] = onlineJSON(res[row].Values[fi])
				v.Statuses[row] = res[row].Statuses[fi].String()
				v.EventTimestamps[row] = epoch
				if res[row].Found {
					v.EventTimestamps[row] = res[row].EventTime.UTC().Format(time.RFC3339Nano)
				}
			}
			resp.Results[slot] = v
		}
	}
	return resp, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// keyValue converts a JSON entity value to the online key value of column
// col's type.
func keyValue(sc *arrow.Schema, col string, v any) (online.Value, error) {
	idx := sc.FieldIndices(col)
	if len(idx) == 0 {
		return online.Value{}, fmt.Errorf("no key column %s", col)
	}
	switch sc.Field(idx[0]).Type.ID() {
	case arrow.STRING, arrow.LARGE_STRING:
		switch x := v.(type) {
		case string:
			return online.String(x), nil
		case float64:
			return online.String(fmt.Sprint(x)), nil
		}
	case arrow.INT64, arrow.INT32, arrow.INT16, arrow.INT8:
		switch x := v.(type) {
		case float64:
			if x == math.Trunc(x) {
				return online.Int64(int64(x)), nil
			}
		case string:
			var n int64
			if _, err := fmt.Sscan(x, &n); err == nil {
				return online.Int64(n), nil
			}
		}
	case arrow.BOOL:
		if b, ok := v.(bool); ok {
			return online.Bool(b), nil
		}
	case arrow.FLOAT64, arrow.FLOAT32:
		if x, ok := v.(float64); ok {
			return online.Float64(x), nil
		}
	}
	return online.Value{}, fmt.Errorf("%v (%T) does not fit key column %s of type %s", v, v, col, sc.Field(idx[0]).Type)
}

func onlineJSON(v online.Value) any {
	switch v.Kind() {
	case online.KindBool:
		return v.Bool()
	case online.KindInt64:
		return v.Int64()
	case online.KindFloat64:
		f := v.Float64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return f
	case online.KindString:
		return v.Str()
	case online.KindTimestamp:
		return v.Time().UTC().Format(time.RFC3339Nano)
	}
	return nil
}

// featureTableSync is POST /api/v1/feature-tables/{name}/sync, the
// triggered online sync, and …/publish, which also marks the table online
// so that its pipeline keeps it synced.
func (a *API) featureTableSync(w http.ResponseWriter, r *http.Request) {
	n, err := pathName(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.require(r.Context(), r, n.String(), catalog.PrivModify); err != nil {
		writeError(w, err)
		return
	}
	sync := a.d.Publisher.Sync
	if strings.HasSuffix(r.URL.Path, "/publish") {
		sync = a.d.Publisher.Publish
	}
	st, err := sync(r.Context(), n)
	if errors.Is(err, publish.ErrNotFeatureTable) {
		err = badRequest("%v", err)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, st)
}
