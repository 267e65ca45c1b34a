package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

// PipelineRequest is the body of POST /api/v1/pipelines: the pipeline's
// definition and how to run its first update.
type PipelineRequest struct {
	pipeline.Spec
	pipeline.UpdateRequest
}

// ValidateRequest is the body of POST /api/v1/pipelines/validate.
type ValidateRequest struct {
	Name string `json:"name,omitempty"` // default main.default.pipeline: completes short table names
	SQL  string `json:"sql"`
}

// ValidateResponse is the compiled dataset graph, in dependency order.
type ValidateResponse struct {
	Datasets []pipeline.DatasetInfo `json:"datasets"`
}

// PipelineList is the response of GET /api/v1/pipelines.
type PipelineList struct {
	Pipelines []pipeline.Info `json:"pipelines"`
}

// EventList is the response of GET /api/v1/pipelines/{name}/events.
type EventList struct {
	Events []pipeline.Event `json:"events"`
}

func (a *API) pipelineRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/pipelines/validate", a.validatePipeline)
	mux.HandleFunc("POST /api/v1/pipelines", a.runPipeline)
	mux.HandleFunc("GET /api/v1/pipelines", a.listPipelines)
	mux.HandleFunc("GET /api/v1/pipelines/{name}", a.getPipeline)
	mux.HandleFunc("DELETE /api/v1/pipelines/{name}", a.deletePipeline)
	mux.HandleFunc("POST /api/v1/pipelines/{name}/updates", a.updatePipeline)
	mux.HandleFunc("POST /api/v1/pipelines/{name}/stop", a.stopPipeline)
	mux.HandleFunc("GET /api/v1/pipelines/{name}/events", a.pipelineEvents)
}

func decodeJSON(r *http.Request, v any) error {
	body, err := readBody(r, maxSpecBytes)
	if err != nil {
		return err
	}
	return decodeJSONBytes(body, v)
}

// decodeJSONBytes decodes a request body as decodeJSON does.
func decodeJSONBytes(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("reading the request body: %v", err)
	}
	return nil
}

func (a *API) validatePipeline(w http.ResponseWriter, r *http.Request) {
	var req ValidateRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	name := ident.Name{Catalog: "main", Schema: "default", Object: "pipeline"}
	if req.Name != "" {
		n, err := ident.Parse(req.Name)
		if err != nil {
			writeError(w, err)
			return
		}
		name = n
	}
	g, err := a.d.Pipelines.Compile(r.Context(), name, req.SQL)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, ValidateResponse{Datasets: pipeline.Describe(g)})
}

func (a *API) runPipeline(w http.ResponseWriter, r *http.Request) {
	var req PipelineRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Name == "" {
		writeError(w, badRequest("name is required: the pipeline's three-part name, e.g. main.demo.orders_pipeline"))
		return
	}
	if err := a.checkPipelineAccess(r, req.Spec); err != nil {
		writeError(w, err)
		return
	}
	info, err := a.d.Pipelines.Run(r.Context(), req.Spec, req.UpdateRequest, a.principal(r))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, info)
}

// checkPipelineAccess checks that the caller may read every table the
// pipeline reads that it does not define.
func (a *API) checkPipelineAccess(r *http.Request, spec pipeline.Spec) error {
	name, err := ident.Parse(spec.Name)
	if err != nil {
		return err
	}
	g, err := a.d.Pipelines.Compile(r.Context(), name, spec.SQL)
	if err != nil {
		return err
	}
	for _, d := range g.Datasets {
		for _, src := range d.Reads {
			if g.Dataset(src) != nil {
				continue
			}
			if err := a.require(r.Context(), r, src, catalog.PrivSelect); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *API) listPipelines(w http.ResponseWriter, r *http.Request) {
	list, err := a.d.Pipelines.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if list == nil {
		list = []pipeline.Info{}
	}
	writeJSON(w, 200, PipelineList{Pipelines: list})
}

func (a *API) getPipeline(w http.ResponseWriter, r *http.Request) {
	info, err := a.d.Pipelines.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, info)
}

// ownPipeline checks that the caller owns the pipeline.
func (a *API) ownPipeline(r *http.Request) error {
	info, err := a.d.Pipelines.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if who := a.principal(r); info.Owner != "" && info.Owner != who {
		return &apiError{status: 403, code: "PERMISSION_DENIED", msg: "user " + strconv.Quote(who) + " does not own pipeline " + info.Name + " (its owner is " + info.Owner + ")"}
	}
	return nil
}

func (a *API) deletePipeline(w http.ResponseWriter, r *http.Request) {
	if err := a.ownPipeline(r); err != nil {
		writeError(w, err)
		return
	}
	if err := a.d.Pipelines.Delete(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, map[string]string{"deleted": r.PathValue("name")})
}

func (a *API) updatePipeline(w http.ResponseWriter, r *http.Request) {
	var req pipeline.UpdateRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	if err := a.ownPipeline(r); err != nil {
		writeError(w, err)
		return
	}
	info, err := a.d.Pipelines.Update(r.Context(), r.PathValue("name"), req, a.principal(r))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, info)
}

func (a *API) stopPipeline(w http.ResponseWriter, r *http.Request) {
	if err := a.ownPipeline(r); err != nil {
		writeError(w, err)
		return
	}
	info, err := a.d.Pipelines.Stop(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, info)
}

// maxEventWait bounds the long poll of GET …/events?wait=.
const maxEventWait = 60 * time.Second

func (a *API) pipelineEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after int64
	var limit int
	var wait time.Duration
	var err error
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil {
			writeError(w, badRequest("after=%q: want the seq of the last event seen (an integer)", v))
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			writeError(w, badRequest("limit=%q: want a positive integer", v))
			return
		}
	}
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			writeError(w, badRequest("wait=%q: want a duration such as 30s", v))
			return
		}
		wait = min(wait, maxEventWait)
	}
	evs, err := a.d.Pipelines.Events(r.Context(), r.PathValue("name"), after, limit, wait)
	if err != nil {
		writeError(w, err)
		return
	}
	if evs == nil {
		evs = []pipeline.Event{}
	}
	writeJSON(w, 200, EventList{Events: evs})
}
