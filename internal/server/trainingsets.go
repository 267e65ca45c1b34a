package server

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/feature"
	"github.com/sluice-dev/sluice/internal/ident"
)

// ArrowStreamType is the media type of the Arrow IPC streaming format, in
// which POST /api/v1/training-sets and …/recreate stream rows when the
// request's Accept header asks for it.
const ArrowStreamType = "application/vnd.apache.arrow.stream"

// Response headers of a training set streamed as Arrow.
const (
	TrainingSetHeader = "X-Sluice-Training-Set" // the training set's name
	RowsHeader        = "X-Sluice-Rows"         // how many rows the stream will hold
)

// TrainingSetRequest is the body of POST /api/v1/training-sets.
type TrainingSetRequest struct {
	// Name names the training set; empty generates one.
	Name string       `json:"name,omitempty"`
	Spec feature.Spec `json:"spec"`
	// OutputPath, when set and the response is JSON, is a Parquet file
	// on the server's filesystem to write the rows to.
	OutputPath string `json:"output_path,omitempty"`
}

// RecreateRequest is the (optional) body of POST
// /api/v1/training-sets/{name}/recreate.
type RecreateRequest struct {
	OutputPath string `json:"output_path,omitempty"`
}

// TrainingSetResponse is the JSON response of creating or recreating a
// training set: the record and, when written, where and how much.
type TrainingSetResponse struct {
	TrainingSet feature.TrainingSet `json:"training_set"`
	OutputPath  string              `json:"output_path,omitempty"`
	RowsWritten int64               `json:"rows_written,omitempty"`
	Bytes       int64               `json:"bytes,omitempty"`
}

// TrainingSetList is the response of GET /api/v1/training-sets.
type TrainingSetList struct {
	TrainingSets []feature.TrainingSet `json:"training_sets"`
}

// ModelList is the response of GET /api/v1/models.
type ModelList struct {
	Models []feature.Model `json:"models"`
}

// ModelRequest is the body of POST /api/v1/models.
type ModelRequest struct {
	Name        string `json:"name"`
	TrainingSet string `json:"training_set"`
}

func (a *API) featureRoutes(mux *http.ServeMux) {
	if a.d.Features == nil {
		return
	}
	mux.HandleFunc("POST /api/v1/training-sets", a.createTrainingSet)
	mux.HandleFunc("GET /api/v1/training-sets", a.listTrainingSets)
	mux.HandleFunc("GET /api/v1/training-sets/{name}", a.getTrainingSet)
	mux.HandleFunc("DELETE /api/v1/training-sets/{name}", a.deleteTrainingSet)
	mux.HandleFunc("POST /api/v1/training-sets/{name}/recreate", a.recreateTrainingSet)
	mux.HandleFunc("POST /api/v1/models", a.logModel)
	mux.HandleFunc("GET /api/v1/models", a.listModels)
	mux.HandleFunc("GET /api/v1/models/{name}", a.getModel)
	mux.HandleFunc("DELETE /api/v1/models/{name}", a.deleteModel)
}

// featureError classifies the feature package's errors for statusFor.
func featureError(err error) error {
	var ae *apiError
	if err == nil || errors.As(err, &ae) {
		return err
	}
	switch {
	case errors.Is(err, feature.ErrInvalid), errors.Is(err, ident.ErrInvalid):
		return &apiError{status: 400, code: "INVALID_ARGUMENT", msg: err.Error()}
	case errors.Is(err, feature.ErrNotFound):
		return &apiError{status: 404, code: "NOT_FOUND", msg: err.Error()}
	case errors.Is(err, feature.ErrChanged):
		return &apiError{status: 409, code: "FAILED_PRECONDITION", msg: err.Error()}
	}
	return err
}

// checkReads checks that the caller may read every table the plan reads.
func (a *API) checkReads(r *http.Request, p feature.Plan) error {
	names := []string{}
	if p.Labels.Table != "" {
		names = append(names, p.Labels.Table)
	}
	for _, l := range p.Lookups {
		names = append(names, l.Table)
	}
	for _, s := range names {
		n, err := ident.Parse(s)
		if err != nil {
			return err
		}
		if _, _, err := a.loadReadable(r, n, catalog.PrivSelect); err != nil {
			return err
		}
	}
	return nil
}

func wantsArrow(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), ArrowStreamType)
}

func (a *API) createTrainingSet(w http.ResponseWriter, r *http.Request) {
	var req TrainingSetRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := req.Spec.Validate(); err != nil {
		writeError(w, featureError(err))
		return
	}
	ts, err := a.d.Features.Create(r.Context(), req.Name, req.Spec, a.principal(r),
		func(p feature.Plan) error { return a.checkReads(r, p) })
	if err != nil {
		writeError(w, featureError(err))
		return
	}
	if !wantsArrow(r) && req.OutputPath == "" {
		writeJSON(w, 201, TrainingSetResponse{TrainingSet: ts})
		return
	}
	a.materialize(w, r, ts.Name, req.OutputPath, 201)
}

func (a *API) recreateTrainingSet(w http.ResponseWriter, r *http.Request) {
	var req RecreateRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	ts, err := a.d.Features.Get(r.Context(), r.PathValue("name"))
	if err == nil {
		err = a.checkReads(r, ts.Plan)
	}
	if err != nil {
		writeError(w, featureError(err))
		return
	}
	if !wantsArrow(r) && req.OutputPath == "" {
		writeError(w, badRequest("recreate needs Accept: %s (stream the rows) or output_path (write them on the server)", ArrowStreamType))
		return
	}
	a.materialize(w, r, ts.Name, req.OutputPath, 200)
}

// materialize computes training set name and streams it as Arrow, or
// writes it to outPath on the server.
func (a *API) materialize(w http.ResponseWriter, r *http.Request, name, outPath string, status int) {
	// Computing a large training set takes long: no handler timeout,
	// but the client's disconnect cancels it.
	ctx := r.Context()
	res, ts, err := a.d.Features.Open(ctx, name)
	if err != nil {
		writeError(w, featureError(err))
		return
	}
	defer res.Release()
	if wantsArrow(r) {
		w.Header().Set("Content-Type", ArrowStreamType)
		w.Header().Set(TrainingSetHeader, ts.Name)
		w.Header().Set(RowsHeader, strconv.FormatInt(res.Rows(), 10))
		w.WriteHeader(status)
		flusher, _ := w.(http.Flusher)
		flush := func() {
			if flusher != nil {
				flusher.Flush()
			}
		}
		flush() // the client sees the headers (and the total) at once
		if _, err := feature.WriteArrowStream(w, res, flush); err != nil {
			// The status is sent: the stream ends without its
			// end-of-stream marker, which readers report.
			a.d.Logger.Warn("training set stream failed", "name", ts.Name, "err", err)
		}
		return
	}
	if !filepath.IsAbs(outPath) {
		writeError(w, badRequest("output_path %q must be an absolute path on the server", outPath))
		return
	}
	rows, err := feature.WriteParquetFile(outPath, res, nil)
	if err != nil {
		writeError(w, featureError(err))
		return
	}
	resp := TrainingSetResponse{TrainingSet: ts, OutputPath: outPath, RowsWritten: rows}
	if st, err := os.Stat(outPath); err == nil {
		resp.Bytes = st.Size()
	}
	writeJSON(w, status, resp)
}

func (a *API) listTrainingSets(w http.ResponseWriter, r *http.Request) {
	l, err := a.d.Features.List(r.Context())
	if err != nil {
		writeError(w, featureError(err))
		return
	}
	if l == nil {
		l = []feature.TrainingSet{}
	}
	writeJSON(w, 200, TrainingSetList{TrainingSets: l})
}

func (a *API) getTrainingSet(w http.ResponseWriter, r *http.Request) {
	ts, err := a.d.Features.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, featureError(err))
		return
	}
	writeJSON(w, 200, ts)
}

func (a *API) deleteTrainingSet(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10e9)
	defer cancel()
	ts, err := a.d.Features.Get(ctx, r.PathValue("name"))
	if err == nil && ts.Owner != a.principal(r) {
		err = &apiError{status: 403, code: "PERMISSION_DENIED", msg: "only the owner " + ts.Owner + " may delete training set " + ts.Name}
	}
	if err == nil {
		err = a.d.Features.Delete(ctx, ts.Name)
	}
	if err != nil {
		writeError(w, featureError(err))
		return
	}
	w.WriteHeader(204)
}

func (a *API) logModel(w http.ResponseWriter, r *http.Request) {
	var req ModelRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Name == "" || req.TrainingSet == "" {
		writeError(w, badRequest("name and training_set are required"))
		return
	}
	m, err := a.d.Features.LogModel(r.Context(), req.Name, req.TrainingSet, a.principal(r))
	if err != nil {
		writeError(w, featureError(err))
		return
	}
	writeJSON(w, 201, m)
}

func (a *API) getModel(w http.ResponseWriter, r *http.Request) {
	m, err := a.d.Features.GetModel(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, featureError(err))
		return
	}
	writeJSON(w, 200, m)
}

func (a *API) listModels(w http.ResponseWriter, r *http.Request) {
	l, err := a.d.Features.ListModels(r.Context())
	if err != nil {
		writeError(w, featureError(err))
		return
	}
	if l == nil {
		l = []feature.Model{}
	}
	writeJSON(w, 200, ModelList{Models: l})
}

// deleteModel forgets a model (owner only); its training set is kept.
func (a *API) deleteModel(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10e9)
	defer cancel()
	m, err := a.d.Features.GetModel(ctx, r.PathValue("name"))
	if err == nil && m.Owner != a.principal(r) {
		err = &apiError{status: 403, code: "PERMISSION_DENIED", msg: "only the owner " + m.Owner + " may delete model " + m.Name}
	}
	if err == nil {
		err = a.d.Features.DeleteModel(ctx, m.Name)
	}
	if err != nil {
		writeError(w, featureError(err))
		return
	}
	w.WriteHeader(204)
}
