package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
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
// request does not read the catalog. Entries are found by the name as
// requests spell it and by the canonical name.
type featureTables struct {
	mu sync.RWMutex
	m  map[string]*cachedTable
}

// cachedTable is a feature table's description, immutable once cached.
type cachedTable struct {
	name     string // canonical
	ft       publish.FeatureTable
	schema   *arrow.Schema
	keyTypes []arrow.DataType // of ft.Keys; nil where the schema lacks the column
	online   online.Table
	at       time.Time
}

const featureTableCacheTTL = 5 * time.Second

// fresh returns the cached table spelled name if it is younger than the
// TTL, else nil.
func (c *featureTables) fresh(name string) *cachedTable {
	c.mu.RLock()
	ct := c.m[name]
	c.mu.RUnlock()
	if ct != nil && time.Since(ct.at) < featureTableCacheTTL {
		return ct
	}
	return nil
}

// get returns the description of table name, from the cache when fresh;
// spelled, if not empty, is how the request wrote the name.
func (c *featureTables) get(ctx context.Context, store *table.Store, name ident.Name, spelled string) (*cachedTable, error) {
	if ct := c.fresh(name.String()); ct != nil {
		c.alias(spelled, ct)
		return ct, nil
	}
	t, err := store.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	ft, err := publish.Describe(t)
	if err != nil {
		return nil, err
	}
	sc := t.ArrowSchema()
	ct := &cachedTable{name: ft.Name.String(), ft: ft, schema: sc, online: ft.OnlineTable(), at: time.Now()}
	for _, k := range ft.Keys {
		var dt arrow.DataType
		if idx := sc.FieldIndices(k); len(idx) > 0 {
			dt = sc.Field(idx[0]).Type
		}
		ct.keyTypes = append(ct.keyTypes, dt)
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*cachedTable{}
	}
	c.m[name.String()] = ct
	c.mu.Unlock()
	c.alias(spelled, ct)
	return ct, nil
}

func (c *featureTables) alias(spelled string, ct *cachedTable) {
	if spelled == "" || spelled == ct.name {
		return
	}
	c.mu.Lock()
	if c.m[spelled] != ct {
		c.m[spelled] = ct
	}
	c.mu.Unlock()
}

const epoch = "1970-01-01T00:00:00Z"

// bufPool holds the request and response buffers of /get-online-features.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxFeaturesBody bounds the body of /get-online-features.
const maxFeaturesBody = maxSpecBytes

func (a *API) getOnlineFeatures(w http.ResponseWriter, r *http.Request) {
	in := bufPool.Get().(*[]byte)
	defer bufPool.Put(in)
	body, err := readBodyInto((*in)[:0], r, maxFeaturesBody)
	*in = body[:0]
	if err != nil {
		writeError(w, err)
		return
	}
	var req OnlineFeaturesRequest
	if !parseOnlineFeaturesRequest(body, &req, &a.featureRefs) {
		req = OnlineFeaturesRequest{}
		if err := decodeJSONBytes(body, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	served, err := a.onlineFeatures(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	// Compact, unlike the rest of the API: this is the hot path.
	out := bufPool.Get().(*[]byte)
	defer bufPool.Put(out)
	b := served.appendJSON((*out)[:0])
	*out = b[:0]
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	_, _ = w.Write(b)
}

var jsonContentType = []string{"application/json"}

// readBodyInto appends r's body to dst; a body over max bytes is a 400.
func readBodyInto(dst []byte, r *http.Request, max int) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= int64(max) {
		dst = slices.Grow(dst, int(n)+1) // +1: the read that sees EOF
	}
	for {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, 4<<10)
		}
		n, err := r.Body.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > max {
			return dst, badRequest("request body is larger than %d bytes", max)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, badRequest("reading request body: %v", err)
		}
	}
}

// servedFeatures is the answer to one OnlineFeaturesRequest, before it is
// written as Feast's response (appendJSON).
type servedFeatures struct {
	rows       int
	entityCols []string
	entityVals [][]any // per entity column, as the request gave them
	// names and cols are per requested feature, in request order.
	names []string
	cols  []servedColumn
}

// servedColumn is one requested feature: position fi of its table's
// results.
type servedColumn struct {
	g  *servedTable
	fi int
}

// servedTable is one feature table of a request: the features asked of it
// and what the online store returned.
type servedTable struct {
	ct       *cachedTable
	features []string
	slots    []int // result index of each feature
	res      []online.Result
	stamps   [][]byte // per row: the event time, formatted, quoted
}

func (a *API) onlineFeatures(ctx context.Context, req OnlineFeaturesRequest) (*servedFeatures, error) {
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
	sf := &servedFeatures{rows: rows, names: make([]string, len(req.Features)), cols: make([]servedColumn, len(req.Features))}
	var groups []*servedTable
	for i, ref := range req.Features {
		tname, col, ok := strings.Cut(ref, ":")
		if !ok || col == "" {
			return nil, badRequest("features[%d] = %q: write \"<table>:<column>\"", i, ref)
		}
		ct := a.featureTables.fresh(tname)
		if ct == nil {
			n, err := ident.Parse(tname)
			if err != nil {
				return nil, badRequest("features[%d] = %q: %v", i, ref, err)
			}
			if ct, err = a.featureTables.get(ctx, a.d.Tables, n, tname); err != nil {
				if errors.Is(err, publish.ErrNotFeatureTable) {
					return nil, badRequest("features[%d] = %q: %v", i, ref, err)
				}
				return nil, err
			}
		}
		var g *servedTable
		for _, h := range groups {
			if h.ct.name == ct.name {
				g = h
				break
			}
		}
		if g == nil {
			for _, k := range ct.ft.Keys {
				if _, ok := req.Entities[k]; !ok {
					return nil, badRequest("feature table %s is keyed by (%s): entities must give %s", ct.name, strings.Join(ct.ft.Keys, ", "), k)
				}
				if !contains(sf.entityCols, k) {
					sf.entityCols = append(sf.entityCols, k)
				}
			}
			g = &servedTable{ct: ct, features: make([]string, 0, len(req.Features)), slots: make([]int, 0, len(req.Features))}
			groups = append(groups, g)
		}
		if !contains(g.ct.ft.Features, col) {
			return nil, badRequest("features[%d] = %q: %s has no feature %s (it has %s)", i, ref, ct.name, col, strings.Join(g.ct.ft.Features, ", "))
		}
		sf.cols[i] = servedColumn{g: g, fi: len(g.features)}
		sf.names[i] = col
		if req.FullFeatureNames {
			sf.names[i] = ct.name + "__" + col
		}
		g.features = append(g.features, col)
		g.slots = append(g.slots, i)
	}
	for k := range req.Entities {
		if !contains(sf.entityCols, k) {
			return nil, badRequest("entities: %s is not a key of any requested feature table", k)
		}
	}
	for _, k := range sf.entityCols {
		sf.entityVals = append(sf.entityVals, req.Entities[k])
	}
	now := time.Now()
	for _, g := range groups {
		nk := len(g.ct.ft.Keys)
		keys := make([]online.Key, rows)
		kvs := make([]online.Value, rows*nk)
		for row := range rows {
			key := kvs[row*nk : (row+1)*nk : (row+1)*nk]
			for j, k := range g.ct.ft.Keys {
				v, err := keyValueOf(g.ct.keyTypes[j], k, req.Entities[k][row])
				if err != nil {
					return nil, badRequest("entities.%s[%d]: %v", k, row, err)
				}
				key[j] = v
			}
			keys[row] = key
		}
		res, err := a.readOnline(ctx, g.ct, keys, g.features, now)
		if err != nil {
			return nil, err
		}
		g.res = res
		g.stamps = formatEventTimes(res)
	}
	return sf, nil
}

// readOnline reads the given features of each key of feature table ct at
// time now: one Result per key, in order, with Values and Statuses in the
// order of features. It is the one place serving reads a table's rows.
func (a *API) readOnline(ctx context.Context, ct *cachedTable, keys []online.Key, features []string, now time.Time) ([]online.Result, error) {
	if ct.ft.Window != nil {
		return ct.ft.Get(ctx, a.d.Online, keys, features, now)
	}
	return a.d.Online.Get(ctx, ct.online, keys, features, now)
}

// formatEventTimes formats each result's event time as the response shows
// it (quoted RFC 3339; the epoch for a missing row), in one arena.
func formatEventTimes(res []online.Result) [][]byte {
	out := make([][]byte, len(res))
	arena := make([]byte, 0, len(res)*(len(epoch)+12))
	for i := range res {
		start := len(arena)
		arena = append(arena, '"')
		if res[i].Found {
			arena = res[i].EventTime.UTC().AppendFormat(arena, time.RFC3339Nano)
		} else {
			arena = append(arena, epoch...)
		}
		arena = append(arena, '"')
		out[i] = arena[start:len(arena):len(arena)]
	}
	return out
}

// appendJSON appends Feast's response: the entity columns first, then one
// result per requested feature, in order, each with values, statuses and
// event_timestamps per requested row. It writes what json.Marshal writes
// for the OnlineFeaturesResponse holding the same (a test checks).
func (sf *servedFeatures) appendJSON(b []byte) []byte {
	b = append(b, `{"metadata":{"feature_names":[`...)
	for i, k := range sf.entityCols {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
	}
	for i, n := range sf.names {
		if i > 0 || len(sf.entityCols) > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, n)
	}
	b = append(b, `]},"results":[`...)
	for i, vals := range sf.entityVals {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"values":`...)
		if vals == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for row, v := range vals {
				if row > 0 {
					b = append(b, ',')
				}
				b = appendJSONAny(b, v)
			}
			b = append(b, ']')
		}
		b = append(b, `,"statuses":[`...)
		for row := range sf.rows {
			if row > 0 {
				b = append(b, ',')
			}
			b = append(b, `"PRESENT"`...)
		}
		b = append(b, `],"event_timestamps":[`...)
		for row := range sf.rows {
			if row > 0 {
				b = append(b, ',')
			}
			b = append(b, `"`+epoch+`"`...)
		}
		b = append(b, "]}"...)
	}
	for i, c := range sf.cols {
		if i > 0 || len(sf.entityVals) > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"values":[`...)
		for row := range sf.rows {
			if row > 0 {
				b = append(b, ',')
			}
			b = appendOnlineValue(b, c.g.res[row].Values[c.fi])
		}
		b = append(b, `],"statuses":[`...)
		for row := range sf.rows {
			if row > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, c.g.res[row].Statuses[c.fi].String()...)
			b = append(b, '"')
		}
		b = append(b, `],"event_timestamps":[`...)
		for row := range sf.rows {
			if row > 0 {
				b = append(b, ',')
			}
			b = append(b, c.g.stamps[row]...)
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
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
	var dt arrow.DataType
	if idx := sc.FieldIndices(col); len(idx) > 0 {
		dt = sc.Field(idx[0]).Type
	}
	return keyValueOf(dt, col, v)
}

// keyValueOf converts a JSON entity value to the online key value of type
// dt, the type of key column col (nil if the table has no such column).
func keyValueOf(dt arrow.DataType, col string, v any) (online.Value, error) {
	if dt == nil {
		return online.Value{}, fmt.Errorf("no key column %s", col)
	}
	switch dt.ID() {
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
	return online.Value{}, fmt.Errorf("%v (%T) does not fit key column %s of type %s", v, v, col, dt)
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
	switch full := r.URL.Query().Get("full"); {
	case strings.HasSuffix(r.URL.Path, "/publish"):
		sync = a.d.Publisher.Publish
	case full == "true":
		sync = a.d.Publisher.Resync
	case full != "" && full != "false":
		writeError(w, badRequest("full=%q: use full=true to rewrite the whole table online, or leave it out", full))
		return
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
