package server

import (
	"errors"
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
// features the model was trained on, read from the online store. A
// feature whose table has no row for the entity (or whose row is past
// the TTL) is null.
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
	// Output names: the feature's name, prefixed with its table's last
	// name part where two tables give the same name (as training sets do).
	count := map[string]int{}
	for _, mf := range m.Features {
		for _, f := range mf.Features {
			count[f]++
		}
	}
	now := time.Now()
	for _, mf := range m.Features {
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
			for fi, f := range mf.Features {
				name := f
				if count[f] > 1 {
					name = n.Object + "__" + f
				}
				out[i][name] = onlineJSON(res[i].Values[fi])
			}
		}
	}
	writeJSON(w, 200, InvocationsResponse{Outputs: out})
}
