package server

import (
	"net/http"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// Column describes one column of a table.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// TableInfo is the response of GET /api/v1/tables/{name}.
type TableInfo struct {
	Name               string            `json:"name"`
	Location           string            `json:"location"`
	Columns            []Column          `json:"columns"`
	Rows               int64             `json:"rows"`
	DataFiles          int               `json:"data_files"`
	SnapshotID         int64             `json:"snapshot_id"`
	Snapshots          int               `json:"snapshots"`
	SnapshotProperties map[string]string `json:"snapshot_properties,omitempty"`
	Properties         map[string]string `json:"properties,omitempty"`
	Stream             string            `json:"stream,omitempty"`
}

// Rows is the response of GET /api/v1/tables/{name}/rows: rows as arrays
// in column order. Timestamps are RFC 3339 strings in UTC, binary values
// base64, structs objects, lists arrays.
type Rows struct {
	Columns []Column `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

func columns(sc *arrow.Schema) []Column {
	out := make([]Column, sc.NumFields())
	for i, f := range sc.Fields() {
		out[i] = Column{Name: f.Name, Type: f.Type.String()}
	}
	return out
}

// loadReadable loads table n after checking that the caller may read it:
// a table that belongs to a stream needs SELECT on the ingestion table.
func (a *API) loadReadable(r *http.Request, n ident.Name, p catalog.Privilege) (*table.Table, string, error) {
	s, owned := a.streamOfTable(r, n)
	if owned {
		if err := a.require(r.Context(), r, s.Destination, p); err != nil {
			return nil, "", err
		}
	}
	t, err := a.d.Tables.Load(r.Context(), n)
	return t, s.Name, err
}

func (a *API) getTable(w http.ResponseWriter, r *http.Request) {
	n, err := pathName(r)
	if err != nil {
		writeError(w, err)
		return
	}
	t, streamName, err := a.loadReadable(r, n, catalog.PrivSelect)
	if err != nil {
		writeError(w, err)
		return
	}
	rows, err := t.Count(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	files, err := t.DataFiles(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, TableInfo{
		Name: n.String(), Location: t.Location(), Columns: columns(t.ArrowSchema()), Rows: rows,
		DataFiles: len(files), SnapshotID: t.SnapshotID(), Snapshots: t.SnapshotCount(),
		SnapshotProperties: t.SnapshotProperties(), Properties: t.Properties(), Stream: streamName,
	})
}

func (a *API) listTables(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, s := q.Get("catalog_name"), q.Get("schema_name")
	if c == "" || s == "" {
		writeError(w, badRequest("catalog_name and schema_name are required, e.g. ?catalog_name=main&schema_name=demo"))
		return
	}
	names, err := a.d.Tables.List(r.Context(), c, s)
	if err != nil {
		writeError(w, err)
		return
	}
	// Tables of streams the caller may not SELECT are left out, as in the
	// stream list.
	out := make([]string, 0, len(names))
	for _, n := range names {
		if st, owned := a.streamOfTable(r, n); owned {
			if ok, _ := a.d.Catalog.Allowed(r.Context(), st.Destination, a.principal(r), catalog.PrivSelect); !ok {
				continue
			}
		}
		out = append(out, n.String())
	}
	writeJSON(w, http.StatusOK, map[string][]string{"tables": out})
}

const maxRowLimit = 100_000

func (a *API) tableRows(w http.ResponseWriter, r *http.Request) {
	n, err := pathName(r)
	if err != nil {
		writeError(w, err)
		return
	}
	limit := int64(20)
	if v := r.URL.Query().Get("limit"); v != "" {
		l, err := strconv.ParseInt(v, 10, 64)
		if err != nil || l < 0 || l > maxRowLimit {
			writeError(w, badRequest("limit must be an integer from 0 to %d, got %q", maxRowLimit, v))
			return
		}
		limit = l
	}
	t, _, err := a.loadReadable(r, n, catalog.PrivSelect)
	if err != nil {
		writeError(w, err)
		return
	}
	rdr, err := t.Scan(r.Context(), table.ScanOptions{Limit: limit})
	if err != nil {
		writeError(w, err)
		return
	}
	defer rdr.Release()
	out := Rows{Columns: columns(t.ArrowSchema()), Rows: [][]any{}}
	for rdr.Next() && int64(len(out.Rows)) < limit {
		rec := rdr.RecordBatch()
		for i := 0; i < int(rec.NumRows()) && int64(len(out.Rows)) < limit; i++ {
			row := make([]any, rec.NumCols())
			for c := range row {
				row[c] = jsonValue(rec.Column(c), i)
			}
			out.Rows = append(out.Rows, row)
		}
	}
	if err := rdr.Err(); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) optimizeTable(w http.ResponseWriter, r *http.Request) {
	n, err := pathName(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if _, _, err := a.loadReadable(r, n, catalog.PrivModify); err != nil {
		writeError(w, err)
		return
	}
	// A running ingestion may commit meanwhile; Optimize retries on the new state.
	stats, err := a.d.Tables.Optimize(r.Context(), n, table.OptimizeOptions{})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, stats)
}
