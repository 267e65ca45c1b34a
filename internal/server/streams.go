package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/stream"
)

// StreamInfo is a stream as the API returns it: its spec (schemas omitted
// from lists unless include_schemas=true) plus what sluice recorded.
type StreamInfo struct {
	*stream.Spec
	Owner        string          `json:"owner"`
	CreatedAt    time.Time       `json:"created_at"`
	StartOffsets json.RawMessage `json:"start_offsets"`
	Status       ingest.Status   `json:"status"`
}

// StreamList is the response of GET /api/v1/streams.
type StreamList struct {
	Streams       []StreamInfo `json:"streams"`
	NextPageToken string       `json:"next_page_token,omitempty"`
}

const maxSpecBytes = 1 << 20

func (a *API) createStream(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, maxSpecBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	spec, err := stream.Parse(body)
	if err != nil {
		if fe := (*stream.FieldError)(nil); !errors.As(err, &fe) {
			err = badRequest("%v", err) // YAML syntax, unknown field, empty document
		}
		writeError(w, err)
		return
	}
	if m := spec.Connection.MTLS; m != nil && m.KeyPasswordRef != nil {
		if ok, err := a.d.Catalog.Allowed(r.Context(), catalog.ScopeSecurable(m.KeyPasswordRef.Scope), a.principal(r), catalog.PrivManage); err != nil {
			writeError(w, err)
			return
		} else if !ok {
			writeError(w, &apiError{status: 403, code: "PERMISSION_DENIED", field: "connection.mtls.key_password_ref",
				msg: fmt.Sprintf("connection.mtls.key_password_ref: user %q lacks MANAGE on secret scope %s", a.principal(r), m.KeyPasswordRef.Scope)})
			return
		}
	}
	s, err := a.d.Streams.Create(r.Context(), spec, a.principal(r))
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := a.streamInfo(r, s, true)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

func (a *API) streamInfo(r *http.Request, s catalog.Stream, withSchemas bool) (StreamInfo, error) {
	spec, err := stream.Parse(s.Spec)
	if err != nil {
		return StreamInfo{}, err
	}
	if !withSchemas {
		spec.Schema = stream.Schemas{}
	}
	st, err := a.d.Streams.Status(r.Context(), s.Name)
	if err != nil {
		return StreamInfo{}, err
	}
	return StreamInfo{Spec: spec, Owner: s.Owner, CreatedAt: s.CreatedAt, StartOffsets: s.StartOffsets, Status: st}, nil
}

// pathStream returns the stream named in the path after checking that the
// caller holds p on its ingestion table.
func (a *API) pathStream(r *http.Request, p catalog.Privilege) (catalog.Stream, error) {
	name, err := pathName(r)
	if err != nil {
		return catalog.Stream{}, err
	}
	s, err := a.d.Catalog.GetStream(r.Context(), name.String())
	if err != nil {
		return catalog.Stream{}, err
	}
	return s, a.require(r.Context(), r, s.Destination, p)
}

func (a *API) getStream(w http.ResponseWriter, r *http.Request) {
	s, err := a.pathStream(r, catalog.PrivSelect)
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := a.streamInfo(r, s, true)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// listStreams serves GET /api/v1/streams?catalog_name=&schema_name=
// &max_results=&page_token=&include_schemas=, as the seed's list_streams.
// Streams the caller may not SELECT are left out.
func (a *API) listStreams(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix := ""
	if c := q.Get("catalog_name"); c != "" {
		prefix = c + "."
		if s := q.Get("schema_name"); s != "" {
			prefix += s + "."
		}
	} else if q.Get("schema_name") != "" {
		writeError(w, badRequest("schema_name needs catalog_name"))
		return
	}
	limit := 100
	if v := q.Get("max_results"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, badRequest("max_results must be an integer from 1 to 1000, got %q", v))
			return
		}
		limit = n
	}
	withSchemas := false
	if v := q.Get("include_schemas"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, badRequest("include_schemas must be true or false, got %q", v))
			return
		}
		withSchemas = b
	}
	// A page may hold fewer than max_results streams when some are not
	// readable by the caller; next_page_token is set while more may follow.
	page, err := a.d.Catalog.ListStreams(r.Context(), prefix, q.Get("page_token"), limit)
	if err != nil {
		writeError(w, err)
		return
	}
	out := StreamList{Streams: []StreamInfo{}}
	for _, s := range page {
		if ok, _ := a.d.Catalog.Allowed(r.Context(), s.Destination, a.principal(r), catalog.PrivSelect); !ok {
			continue
		}
		info, err := a.streamInfo(r, s, withSchemas)
		if err != nil {
			writeError(w, err)
			return
		}
		out.Streams = append(out.Streams, info)
	}
	if len(page) == limit {
		out.NextPageToken = page[len(page)-1].Name
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteStream(w http.ResponseWriter, r *http.Request) {
	s, err := a.pathStream(r, catalog.PrivManage)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.d.Streams.Delete(r.Context(), s.Name); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": s.Name})
}

// streamOfTable returns the stream that owns table n (as its ingestion or
// quarantine table), if any.
func (a *API) streamOfTable(r *http.Request, n ident.Name) (catalog.Stream, bool) {
	dest := n.String()
	if base, ok := strings.CutSuffix(n.Object, stream.QuarantineSuffix); ok {
		if s, err := a.d.Catalog.StreamByDestination(r.Context(), n.WithObject(base).String()); err == nil {
			return s, true
		}
	}
	s, err := a.d.Catalog.StreamByDestination(r.Context(), dest)
	return s, err == nil
}
