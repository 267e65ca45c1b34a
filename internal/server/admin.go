package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/catalog"
)

// TopicRequest is the body of POST /api/v1/topics.
type TopicRequest struct {
	Name       string `json:"name"`
	Partitions int32  `json:"partitions"`
}

func (a *API) kafkaOrError(w http.ResponseWriter) bool {
	if a.d.Kafka == nil {
		writeError(w, &apiError{status: 501, code: "NOT_IMPLEMENTED", msg: "this server has no default broker; start it with the embedded broker or --broker-addr"})
		return false
	}
	return true
}

func (a *API) listTopics(w http.ResponseWriter, r *http.Request) {
	if !a.kafkaOrError(w) {
		return
	}
	topics, err := broker.ListTopics(r.Context(), a.d.Kafka)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"topics": topics})
}

func (a *API) createTopic(w http.ResponseWriter, r *http.Request) {
	if !a.kafkaOrError(w) {
		return
	}
	var req TopicRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, badRequest("body must be {\"name\": TOPIC, \"partitions\": N}: %v", err))
		return
	}
	if req.Name == "" {
		writeError(w, badRequest("name is required"))
		return
	}
	if req.Partitions == 0 {
		req.Partitions = 1
	}
	if req.Partitions < 1 || req.Partitions > 10000 {
		writeError(w, badRequest("partitions must be from 1 to 10000, got %d", req.Partitions))
		return
	}
	if err := broker.CreateTopic(r.Context(), a.d.Kafka, req.Name, req.Partitions); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, req)
}

// SecretRequest is the body of PUT /api/v1/secrets/{scope}/{key}.
type SecretRequest struct {
	Value string `json:"value"`
}

func (a *API) putSecret(w http.ResponseWriter, r *http.Request) {
	var req SecretRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, badRequest("body must be {\"value\": \"...\"}: %v", err))
		return
	}
	scope, key := r.PathValue("scope"), r.PathValue("key")
	// The first to store a secret in a scope owns it.
	if ok, err := a.d.Catalog.ClaimScope(r.Context(), scope, a.principal(r)); err != nil {
		writeError(w, err)
		return
	} else if !ok {
		writeError(w, scopeDenied(a.principal(r), scope))
		return
	}
	if err := a.d.Catalog.PutSecret(r.Context(), scope, key, []byte(req.Value)); err != nil {
		writeError(w, err)
		return
	}
	// The value is never echoed back.
	writeJSON(w, http.StatusOK, map[string]string{"scope": scope, "key": key})
}

func (a *API) listSecrets(w http.ResponseWriter, r *http.Request) {
	all, err := a.d.Catalog.ListSecrets(r.Context(), r.URL.Query().Get("scope"))
	if err != nil {
		writeError(w, err)
		return
	}
	// Only the scopes the caller manages.
	list := []catalog.SecretInfo{}
	for _, s := range all {
		if ok, _ := a.d.Catalog.Allowed(r.Context(), catalog.ScopeSecurable(s.Scope), a.principal(r), catalog.PrivManage); ok {
			list = append(list, s)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"secrets": list})
}

func (a *API) deleteSecret(w http.ResponseWriter, r *http.Request) {
	scope := r.PathValue("scope")
	// A scope nobody owns holds no secrets: DeleteSecret answers 404.
	if g, err := a.d.Catalog.Grants(r.Context(), catalog.ScopeSecurable(scope)); err != nil {
		writeError(w, err)
		return
	} else if len(g) > 0 {
		if ok, _ := a.d.Catalog.Allowed(r.Context(), catalog.ScopeSecurable(scope), a.principal(r), catalog.PrivManage); !ok {
			writeError(w, scopeDenied(a.principal(r), scope))
			return
		}
	}
	if err := a.d.Catalog.DeleteSecret(r.Context(), r.PathValue("scope"), r.PathValue("key")); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": r.PathValue("scope") + "/" + r.PathValue("key")})
}

func scopeDenied(who, scope string) error {
	return &apiError{status: 403, code: "PERMISSION_DENIED", msg: fmt.Sprintf("user %q lacks MANAGE on secret scope %s (its owner can grant it)", who, scope)}
}
