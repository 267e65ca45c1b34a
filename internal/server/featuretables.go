package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/catalog"

	"github.com/sluice-dev/sluice/internal/feature/window"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/publish"
)

// FeatureTableInfo describes a feature table: POST /api/v1/feature-tables
// returns it for the table it created, GET …/{name} for any.
type FeatureTableInfo struct {
	Name     string   `json:"name"`
	Keys     []string `json:"keys"`
	TimeKey  string   `json:"timestamp_key,omitempty"`
	TTL      string   `json:"ttl,omitempty"`
	Online   bool     `json:"online"`
	Windowed bool     `json:"windowed"`
	// Pipeline is the pipeline writing a windowed table's feature log.
	Pipeline string               `json:"pipeline,omitempty"`
	Features []FeatureInfo        `json:"features"`
	SQL      string               `json:"sql,omitempty"`
	State    *pipelineStateSketch `json:"pipeline_state,omitempty"`
}

// FeatureInfo is one feature of a [FeatureTableInfo].
type FeatureInfo struct {
	Name     string `json:"name"`
	Function string `json:"function,omitempty"`
	Window   string `json:"window,omitempty"`
	// Precision is the step in which a window's start moves (its tiles'
	// size at the window's tail).
	Precision string `json:"precision,omitempty"`
}

type pipelineStateSketch struct {
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

func featureTableInfo(ft publish.FeatureTable) FeatureTableInfo {
	info := FeatureTableInfo{Name: ft.Name.String(), Keys: ft.Keys, TimeKey: ft.TimeKey, Online: ft.Online, Windowed: ft.Window != nil}
	if ft.TTL > 0 {
		info.TTL = window.FormatDuration(ft.TTL)
	}
	if ft.Window == nil {
		for _, f := range ft.Features {
			info.Features = append(info.Features, FeatureInfo{Name: f})
		}
		return info
	}
	info.Pipeline = ft.Name.String() + "_pipeline"
	info.Features = windowedFeatureInfos(ft.Window)
	return info
}

// windowedFeatureInfos describes the features of a windowed table.
func windowedFeatureInfos(def *window.Def) []FeatureInfo {
	out := make([]FeatureInfo, 0, len(def.Features))
	for _, f := range def.Features {
		fi := FeatureInfo{Name: f.Name, Function: f.Function, Window: f.Window}
		if w := f.WindowLength(); w > 0 {
			fi.Precision = window.FormatDuration(window.Precision(w))
		}
		out = append(out, fi)
	}
	return out
}

// createFeatureTable is POST /api/v1/feature-tables: a spec
// (docs/features.md) as JSON. A windowed spec (with source and features)
// compiles to the pipeline writing the feature log, which starts; a plain
// one (primary_keys and schema) makes an empty feature table.
func (a *API) createFeatureTable(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, 1<<20)
	if err != nil {
		writeError(w, err)
		return
	}
	if !window.IsSpec(body) {
		a.createPlainFeatureTable(w, r, body)
		return
	}
	if a.d.Pipelines == nil {
		writeError(w, &apiError{status: 501, code: "NOT_IMPLEMENTED", msg: "this server runs no pipelines, which windowed feature tables need"})
		return
	}
	spec, err := window.ParseSpec(body)
	if err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	trigger := spec.Trigger
	if trigger == "" {
		trigger = "continuous"
	}
	ps := pipeline.Spec{Name: spec.PipelineName(), SQL: spec.SQL(), Trigger: trigger}
	if err := a.checkPipelineAccess(r, ps); err != nil {
		writeError(w, err)
		return
	}
	pinfo, err := a.d.Pipelines.Run(r.Context(), ps, pipeline.UpdateRequest{}, a.principal(r))
	if err != nil {
		var perr *pipeline.Error
		if errors.As(err, &perr) || errors.Is(err, pipeline.ErrInvalid) || errors.Is(err, pipeline.ErrUnknownTable) {
			writeError(w, badRequest("feature table %s: its expressions do not compile against %s: %v (the generated pipeline is shown by `sluice feature-table get %s`)", spec.Name, spec.Source, err, spec.Name))
			return
		}
		writeError(w, err)
		return
	}
	info := FeatureTableInfo{Name: spec.Name, Online: spec.Online, Windowed: true, Pipeline: ps.Name, TTL: spec.TTL, TimeKey: spec.TimestampColumn, SQL: ps.SQL,
		State: &pipelineStateSketch{State: pinfo.State, Error: pinfo.Error}}
	for _, k := range spec.Entity {
		info.Keys = append(info.Keys, k.Name)
	}
	info.Features = windowedFeatureInfos(spec.Def())
	writeJSON(w, 201, info)
}

// getFeatureTable is GET /api/v1/feature-tables/{name}.
func (a *API) getFeatureTable(w http.ResponseWriter, r *http.Request) {
	name, err := pathName(r)
	if err != nil {
		writeError(w, err)
		return
	}
	t, err := a.d.Tables.Load(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	ft, err := publish.Describe(t)
	if err != nil {
		if errors.Is(err, publish.ErrNotFeatureTable) {
			writeError(w, badRequest("%v", err))
			return
		}
		writeError(w, err)
		return
	}
	info := featureTableInfo(ft)
	if ft.Window != nil && a.d.Pipelines != nil {
		if p, err := a.d.Pipelines.Get(r.Context(), info.Pipeline); err == nil {
			info.SQL = p.SQL
			info.State = &pipelineStateSketch{State: p.State, Error: p.Error}
		}
	}
	writeJSON(w, 200, info)
}

// createPlainFeatureTable creates an empty feature table from a
// publish.TableSpec; rows come through POST …/{name}/rows.
func (a *API) createPlainFeatureTable(w http.ResponseWriter, r *http.Request, body []byte) {
	spec, sc, err := publish.ParseTableSpec(body)
	if err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	t, err := spec.Create(r.Context(), a.d.Tables, sc)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.d.Catalog.Grant(r.Context(), spec.Name, a.principal(r), catalog.PrivAll); err != nil {
		writeError(w, err)
		return
	}
	ft, err := publish.Describe(t)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 201, featureTableInfo(ft))
}

// WriteRowsResponse is what POST /api/v1/feature-tables/{name}/rows returns.
type WriteRowsResponse struct {
	Table        string `json:"table"`
	RowsWritten  int64  `json:"rows_written"`
	SyncedOnline bool   `json:"synced_online"`
}

// writeFeatureRows is POST /api/v1/feature-tables/{name}/rows: merge rows
// into a feature table created by POST /api/v1/feature-tables, as the
// seed's write_table(mode="merge"): a row with the (keys, timestamp) of a
// stored row replaces it. Body: {"rows": [{column: value, …}, …]}.
func (a *API) writeFeatureRows(w http.ResponseWriter, r *http.Request) {
	name, err := pathName(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.require(r.Context(), r, name.String(), catalog.PrivModify); err != nil {
		writeError(w, err)
		return
	}
	body, err := readBody(r, 64<<20)
	if err != nil {
		writeError(w, err)
		return
	}
	var req struct {
		Rows json.RawMessage `json:"rows"`
	}
	if err := decodeJSONBytes(body, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Rows) == 0 || bytes.Equal(bytes.TrimSpace(req.Rows), []byte("[]")) {
		writeError(w, badRequest("rows is empty: give {\"rows\": [{\"user_id\": \"u1\", …}, …]}"))
		return
	}
	t, err := a.d.Tables.Load(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	props := t.Properties()
	if props[publish.PropWriter] != "api" {
		writeError(w, badRequest("%s is written by its pipeline; only feature tables made with `sluice feature-table create` (POST /api/v1/feature-tables) take rows", name))
		return
	}
	ft, err := publish.Describe(t)
	if err != nil {
		writeError(w, err)
		return
	}
	sc := t.ArrowSchema()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, bytes.NewReader(req.Rows))
	if err != nil {
		writeError(w, badRequest("rows do not match the table's columns (%s): %v", describeSchema(sc), err))
		return
	}
	defer rec.Release()
	keys := append(append([]string{}, ft.Keys...), ft.TimeKey)
	if ft.TimeKey == "" {
		keys = ft.Keys
	}
	for _, k := range keys {
		if c := rec.Column(sc.FieldIndices(k)[0]); c.NullN() > 0 {
			writeError(w, badRequest("rows: key column %s is missing or null in %d row(s)", k, c.NullN()))
			return
		}
	}
	if err := pipeline.MergeRows(r.Context(), t, keys, sc, []arrow.RecordBatch{rec}, nil, nil); err != nil {
		writeError(w, err)
		return
	}
	resp := WriteRowsResponse{Table: name.String(), RowsWritten: rec.NumRows()}
	if ft.Online && a.d.Publisher != nil {
		if _, err := a.d.Publisher.Sync(r.Context(), name); err != nil {
			writeError(w, err)
			return
		}
		resp.SyncedOnline = true
	}
	writeJSON(w, 200, resp)
}

func describeSchema(sc *arrow.Schema) string {
	parts := make([]string, sc.NumFields())
	for i, f := range sc.Fields() {
		parts[i] = f.Name + " " + f.Type.String()
	}
	return strings.Join(parts, ", ")
}
