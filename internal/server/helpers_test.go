package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/node"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// startNode starts a real node on free ports; see sluicetest.StartNode.
func startNode(t testing.TB) *node.Node { return sluicetest.StartNode(t) }

// response is one HTTP exchange as the client saw it.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorBody decodes the API's error shape, failing if the body is not one.
func (r response) errorBody(t testing.TB) (code, message, field string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error response has Content-Type %q, want application/json: %s", ct, r.body)
	}
	var b struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || b.Error == nil || b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("status %d: body is not {\"error\":{\"code\",\"message\"[,\"field\"]}}: %v: %s", r.status, err, r.body)
	}
	return b.Error.Code, b.Error.Message, b.Error.Field
}

// decode decodes the body into out, failing the test if it does not parse.
func (r response) decode(t testing.TB, out any) {
	t.Helper()
	if err := json.Unmarshal(r.body, out); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// call sends one request to the API at base as user ("" sends no
// X-Sluice-User). body is sent as is when it is a string, else as JSON.
func call(t testing.TB, base, user, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(sluicetest.Context(t), method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("X-Sluice-User", user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// mustCall is call that fails the test unless the status is want.
func mustCall(t testing.TB, base, user, method, path string, body any, want int) response {
	t.Helper()
	r := call(t, base, user, method, path, body)
	if r.status != want {
		t.Fatalf("%s %s as %q: status %d, want %d: %s", method, path, user, r.status, want, r.body)
	}
	return r
}

// clicksSpec is a YAML stream spec over topic, reading brokers at addr.
// The payload's properties are deliberately not in alphabetical order.
func clicksSpec(name, topic, dest, addr string) string {
	return fmt.Sprintf(`name: %s
source: {kafka: {subscribe: %s}}
connection: {bootstrap_servers: "%s"}
schema:
  key: {json_schema: {type: string}}
  payload:
    json_schema:
      type: object
      properties:
        zeta:  {type: string}
        alpha: {type: integer}
        mid:   {type: object, properties: {y: {type: boolean}, b: {type: string}}}
      required: [zeta]
ingestion:
  destination: %s
  commit_interval: 100ms
`, name, topic, addr, dest)
}

// produce writes records (key:value lines split at the first ':') to
// partition 0 of topic at addr, synchronously.
func produce(t testing.TB, addr, topic string, kvs ...string) {
	t.Helper()
	sluicetest.Produce(t, addr, topic, time.Time{}, kvs...)
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
