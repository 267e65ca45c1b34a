// Package server is sluice's HTTP face: the REST API under /api/v1 that the
// CLI and other clients use (streams, tables, topics, secrets), /healthz and
// /metrics. Errors are JSON objects naming what was wrong; statusFor maps
// error classes to HTTP status codes in one place.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/user"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/expr"
	"github.com/sluice-dev/sluice/internal/feature"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/publish"
	sqlparse "github.com/sluice-dev/sluice/internal/sql"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/table"
)

// UserHeader carries the caller's name. Until authentication lands, sluice
// trusts it (the CLI sends the OS user); a request without it acts as the
// user running the server.
const UserHeader = "X-Sluice-User"

// Deps is what the API serves. All fields but Kafka are required.
type Deps struct {
	Catalog *catalog.Catalog
	Tables  *table.Store
	Streams *ingest.Manager
	// Pipelines serves /api/v1/pipelines; nil disables those routes.
	Pipelines *pipeline.Manager
	// Online and Publisher serve features online (/get-online-features)
	// and sync feature tables to the online store; nil disables them.
	Online    online.Store
	Publisher *publish.Publisher
	// Features serves training sets and models; nil disables them.
	Features *feature.Service
	Gatherer prometheus.Gatherer
	// Kafka is a client of the default broker (the embedded one, or
	// --broker-addr), used by the topic endpoints; nil disables them.
	Kafka  *kgo.Client
	Logger *slog.Logger
}

// API serves the REST API.
type API struct {
	d             Deps
	defaultUser   string
	featureTables featureTables
	featureRefs   internTable // feature references of /get-online-features requests
}

// New returns the API over d.
func New(d Deps) *API {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	u := "local"
	if cur, err := user.Current(); err == nil && cur.Username != "" {
		u = cur.Username
	}
	return &API{d: d, defaultUser: u}
}

// Handler returns the HTTP handler of the whole API.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	if a.d.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.d.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("POST /api/v1/streams", a.createStream)
	mux.HandleFunc("GET /api/v1/streams", a.listStreams)
	mux.HandleFunc("GET /api/v1/streams/{name}", a.getStream)
	mux.HandleFunc("DELETE /api/v1/streams/{name}", a.deleteStream)
	mux.HandleFunc("GET /api/v1/tables", a.listTables)
	mux.HandleFunc("GET /api/v1/tables/{name}", a.getTable)
	mux.HandleFunc("GET /api/v1/tables/{name}/rows", a.tableRows)
	mux.HandleFunc("POST /api/v1/tables/{name}/optimize", a.optimizeTable)
	if a.d.Pipelines != nil {
		a.pipelineRoutes(mux)
	}
	if a.d.Online != nil && a.d.Publisher != nil {
		mux.HandleFunc("POST /get-online-features", a.getOnlineFeatures)
		mux.HandleFunc("POST /api/v1/feature-tables", a.createFeatureTable)
		mux.HandleFunc("GET /api/v1/feature-tables/{name}", a.getFeatureTable)
		mux.HandleFunc("POST /api/v1/feature-tables/{name}/rows", a.writeFeatureRows)
		mux.HandleFunc("POST /api/v1/feature-tables/{name}/sync", a.featureTableSync)
		mux.HandleFunc("POST /api/v1/feature-tables/{name}/publish", a.featureTableSync)
		if a.d.Features != nil {
			mux.HandleFunc("POST /api/v1/serving/{name}/invocations", a.invocations)
		}
	}
	a.featureRoutes(mux)
	mux.HandleFunc("GET /api/v1/topics", a.listTopics)
	mux.HandleFunc("POST /api/v1/topics", a.createTopic)
	mux.HandleFunc("GET /api/v1/secrets", a.listSecrets)
	mux.HandleFunc("PUT /api/v1/secrets/{scope}/{key}", a.putSecret)
	mux.HandleFunc("DELETE /api/v1/secrets/{scope}/{key}", a.deleteSecret)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: 404, code: "NOT_FOUND", msg: fmt.Sprintf("no endpoint %s %s; see docs/api.md", r.Method, r.URL.Path)})
	})
	return a.logRequests(mux)
}

func (a *API) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		if !a.d.Logger.Enabled(r.Context(), slog.LevelDebug) {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: 200}
		h.ServeHTTP(sw, r)
		a.d.Logger.Debug("http request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", time.Since(began))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (a *API) principal(r *http.Request) string {
	if u := strings.TrimSpace(r.Header.Get(UserHeader)); u != "" {
		return u
	}
	return a.defaultUser
}

// require checks that the caller holds p on the table securable.
func (a *API) require(ctx context.Context, r *http.Request, securable string, p catalog.Privilege) error {
	who := a.principal(r)
	ok, err := a.d.Catalog.Allowed(ctx, securable, who, p)
	if err != nil {
		return err
	}
	if !ok {
		return &apiError{status: 403, code: "PERMISSION_DENIED", msg: fmt.Sprintf("user %q lacks %s on table %s", who, p, securable)}
	}
	return nil
}

// apiError is an error with its HTTP rendering.
type apiError struct {
	status int
	code   string
	msg    string
	field  string
}

func (e *apiError) Error() string { return e.msg }

// statusFor classifies err for the HTTP edge. It is the only place that
// maps error classes to status codes.
func statusFor(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var field string
	if fe := (*stream.FieldError)(nil); errors.As(err, &fe) {
		field = fe.Field
	}
	var perr *sqlparse.ParseError
	var berr *expr.Error
	var cerr *pipeline.Error
	isSQLError := errors.As(err, &perr) || errors.As(err, &berr) || errors.As(err, &cerr)
	e := func(status int, code string) *apiError {
		return &apiError{status: status, code: code, msg: err.Error(), field: field}
	}
	switch {
	case errors.Is(err, catalog.ErrExists), errors.Is(err, table.ErrExists), errors.Is(err, broker.ErrTopicExists), errors.Is(err, ingest.ErrExists),
		errors.Is(err, pipeline.ErrConflict):
		return e(409, "ALREADY_EXISTS")
	case errors.Is(err, ingest.ErrUnavailable):
		return e(503, "UNAVAILABLE")
	case field != "", isSQLError, errors.Is(err, ingest.ErrInvalid), errors.Is(err, ident.ErrInvalid), errors.Is(err, kerr.InvalidTopicException),
		errors.Is(err, pipeline.ErrInvalid):
		return e(400, "INVALID_ARGUMENT")
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, table.ErrNotFound), errors.Is(err, pipeline.ErrNotFound):
		return e(404, "NOT_FOUND")
	case errors.Is(err, context.DeadlineExceeded):
		return e(504, "DEADLINE_EXCEEDED")
	}
	return &apiError{status: 500, code: "INTERNAL", msg: err.Error()}
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, err error) {
	ae := statusFor(err)
	var b ErrorBody
	b.Error.Code, b.Error.Message, b.Error.Field = ae.code, ae.msg, ae.field
	writeJSON(w, ae.status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // types like struct<a: utf8> stay readable
	_ = enc.Encode(v)
}

func badRequest(format string, args ...any) error {
	return &apiError{status: 400, code: "INVALID_ARGUMENT", msg: fmt.Sprintf(format, args...)}
}

func readBody(r *http.Request, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, badRequest("reading request body: %v", err)
	}
	if int64(len(b)) > max {
		return nil, badRequest("request body is larger than %d bytes", max)
	}
	return b, nil
}

func pathName(r *http.Request) (ident.Name, error) {
	return ident.Parse(r.PathValue("name"))
}
