package server

import (
	"errors"
	"net/http"

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
	for _, f := range ft.Window.Features {
		fi := FeatureInfo{Name: f.Name, Function: f.Function, Window: f.Window}
		if w := f.WindowLength(); w > 0 {
			fi.Precision = window.FormatDuration(window.Precision(w))
		}
		info.Features = append(info.Features, fi)
	}
	return info
}

// createFeatureTable is POST /api/v1/feature-tables: a windowed feature
// spec (docs/features.md) as JSON. It compiles the spec to the pipeline
// writing the feature log and starts it.
func (a *API) createFeatureTable(w http.ResponseWriter, r *http.Request) {
	if a.d.Pipelines == nil {
		writeError(w, &apiError{status: 501, code: "NOT_IMPLEMENTED", msg: "this server runs no pipelines"})
		return
	}
	body, err := readBody(r, 1<<20)
	if err != nil {
		writeError(w, err)
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
	for _, f := range spec.Def().Features {
		fi := FeatureInfo{Name: f.Name, Function: f.Function, Window: f.Window}
		if w := f.WindowLength(); w > 0 {
			fi.Precision = window.FormatDuration(window.Precision(w))
		}
		info.Features = append(info.Features, fi)
	}
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

