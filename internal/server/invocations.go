package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/feature"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/online"
)

// InvocationsRequest is the body of POST /api/v1/serving/{name}/invocations,
// as Databricks model and feature serving endpoints take it: one record per
// row, holding the model's lookup keys.
type InvocationsRequest struct {
	DataframeRecords []map[string]any `json:"dataframe_records"`
}

// InvocationsResponse holds, per record, the record's fields and the
// features the model was trained on, read from the online store, named
// as the columns of the model's training set. A feature whose table has
// no row for the entity (or whose row is past the TTL) is null.
type InvocationsResponse struct {
	Outputs []map[string]any `json:"outputs"`
}

// invocations serves the features of a logged model (sluice model log):
// the caller gives only the keys, the model's lineage gives the features.
func (a *API) invocations(w http.ResponseWriter, r *http.Request) {
	var req InvocationsRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	m, err := a.d.Features.GetModel(r.Context(), r.PathValue("name"))
	if errors.Is(err, feature.ErrNotFound) {
		err = &apiError{status: 404, code: "NOT_FOUND", msg: "no model " + r.PathValue("name") + ": log one with `sluice model log NAME --training-set TS`"}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if len(m.Features) == 0 {
		writeError(w, badRequest("model %s has no features: its training set %s was deleted", m.Name, m.TrainingSet))
		return
	}
	out := make([]map[string]any, len(req.DataframeRecords))
	for i, rec := range req.DataframeRecords {
		out[i] = make(map[string]any, len(rec)+8)
		for k, v := range rec {
			out[i][k] = v
		}
	}
	// Output names are the training set's column names (mf.Columns, from
	// its recorded plan: renames and clash prefixes included), never
	// derived again here: the model sees the names it was trained on.
	now := time.Now()
	for _, mf := range m.Features {
		if len(mf.Columns) != len(mf.Features) {
			writeError(w, fmt.Errorf("model %s: training set %s records %d column name(s) for the %d feature(s) of %s", m.Name, m.TrainingSet, len(mf.Columns), len(mf.Features), mf.Table))
			return
		}
		n, err := ident.Parse(mf.Table)
		if err != nil {
			writeError(w, err)
			return
		}
		ct, err := a.featureTables.get(r.Context(), a.d.Tables, n, "")
		if err != nil {
			writeError(w, err)
			return
		}
		if len(mf.LookupKey) != len(ct.ft.Keys) {
			writeError(w, badRequest("model %s looks %s up by (%s) but the table is keyed by (%s)", m.Name, mf.Table, strings.Join(mf.LookupKey, ", "), strings.Join(ct.ft.Keys, ", ")))
			return
		}
		keys := make([]online.Key, len(req.DataframeRecords))
		for i, rec := range req.DataframeRecords {
			key := make(online.Key, len(mf.LookupKey))
			for j, lk := range mf.LookupKey {
				v, ok := rec[lk]
				if !ok {
					writeError(w, badRequest("dataframe_records[%d] has no %s: model %s needs (%s)", i, lk, m.Name, strings.Join(mf.LookupKey, ", ")))
					return
				}
				kv, err := keyValue(ct.schema, ct.ft.Keys[j], v)
				if err != nil {
					writeError(w, badRequest("dataframe_records[%d].%s: %v", i, lk, err))
					return
				}
				key[j] = kv
			}
			keys[i] = key
		}
		res, err := a.readOnline(r.Context(), ct, keys, mf.Features, now)
		if err != nil {
			writeError(w, err)
			return
		}
		for i := range keys {
			for fi, name := range mf.Columns {
				out[i][name] = onlineJSON(res[i].Values[fi])
			}
		}
	}
	writeJSON(w, 200, InvocationsResponse{Outputs: out})
}
