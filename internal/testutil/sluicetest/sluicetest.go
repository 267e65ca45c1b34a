// Package sluicetest holds helpers for tests that drive a whole running
// sluice from the outside: a client of its REST API, polling an observable
// outcome with a deadline, and the external programs (kcat, DuckDB) that
// integration tests use as independent Kafka and Parquet clients.
//
// Helpers that take a testing.TB call t.Fatal and so must run on the test's
// goroutine; the Client's non-Must methods return errors and may be used
// anywhere.
package sluicetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Client is a client of one sluice REST API. It is safe for concurrent use.
type Client struct {
	// Base is the API's base URL, e.g. "http://127.0.0.1:8080".
	Base string
	// User is sent as X-Sluice-User; default "" sends none, so the request
	// acts as the user running the server.
	User string
	// HTTP is the client used, default one with a 30 s timeout.
	HTTP *http.Client
}

// NewClient returns a client of the API at base acting as user.
func NewClient(base, user string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), User: user, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// StatusError is returned by [Client.Do] when the status is not the one
// expected.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// Do sends a request with body (nil; a string or []byte sent as is; anything
// else as JSON) and, when the status is want, decodes the response into out
// (unless out is nil). Another status yields a *StatusError.
func (c *Client) Do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if c.User != "" {
		req.Header.Set("X-Sluice-User", c.User)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading response: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return &StatusError{Method: method, Path: path, Status: resp.StatusCode, Body: string(raw)}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decoding %s: %w", method, path, raw, err)
		}
	}
	return nil
}

// Stream is the part of GET /api/v1/streams/{name} tests look at.
type Stream struct {
	Name         string          `json:"name"`
	Owner        string          `json:"owner"`
	CreatedAt    time.Time       `json:"created_at"`
	StartOffsets json.RawMessage `json:"start_offsets"`
	Status       Status          `json:"status"`
}

// Status is a stream's status as the API reports it (ingest.Status; kept
// apart so that any package's tests may import this one).
type Status struct {
	State           string                     `json:"state"`
	LastError       string                     `json:"last_error"`
	RowsIngested    int64                      `json:"rows_ingested"`
	RowsQuarantined int64                      `json:"rows_quarantined"`
	Offsets         map[string]map[int32]int64 `json:"offsets"`
	LastCommitAt    time.Time                  `json:"last_commit_at"`
	Backfill        *Backfill                  `json:"backfill"`
}

// Backfill is a stream's backfill state as the API reports it
// (ingest.BackfillStatus).
type Backfill struct {
	State             string    `json:"state"`
	BackfillMax       time.Time `json:"backfill_max_timestamp"`
	IngestionMin      time.Time `json:"ingestion_min_timestamp"`
	Deadline          time.Time `json:"deadline"`
	Trigger           string    `json:"trigger"`
	RowsInserted      int64     `json:"rows_inserted"`
	DuplicatesSkipped int64     `json:"duplicates_skipped"`
	Error             string    `json:"error"`
}

// Table is the part of GET /api/v1/tables/{name} tests look at.
type Table struct {
	Name               string            `json:"name"`
	Location           string            `json:"location"`
	Rows               int64             `json:"rows"`
	DataFiles          int               `json:"data_files"`
	SnapshotID         int64             `json:"snapshot_id"`
	SnapshotProperties map[string]string `json:"snapshot_properties"`
}

// Rows is the response of GET /api/v1/tables/{name}/rows.
type Rows struct {
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	Rows [][]any `json:"rows"`
}

// Maps returns the rows as column name -> value (JSON-decoded: numbers are
// float64, structs map[string]any, binary base64 strings).
func (r Rows) Maps() []map[string]any {
	out := make([]map[string]any, len(r.Rows))
	for i, row := range r.Rows {
		m := make(map[string]any, len(row))
		for c, v := range row {
			m[r.Columns[c].Name] = v
		}
		out[i] = m
	}
	return out
}

// Table fetches a table's description.
func (c *Client) Table(ctx context.Context, name string) (Table, error) {
	var t Table
	err := c.Do(ctx, "GET", "/api/v1/tables/"+url.PathEscape(name), nil, http.StatusOK, &t)
	return t, err
}

// Rows fetches up to limit rows of a table.
func (c *Client) Rows(ctx context.Context, name string, limit int) (Rows, error) {
	var r Rows
	err := c.Do(ctx, "GET", fmt.Sprintf("/api/v1/tables/%s/rows?limit=%d", url.PathEscape(name), limit), nil, http.StatusOK, &r)
	return r, err
}

// Stream fetches a stream.
func (c *Client) Stream(ctx context.Context, name string) (Stream, error) {
	var s Stream
	err := c.Do(ctx, "GET", "/api/v1/streams/"+url.PathEscape(name), nil, http.StatusOK, &s)
	return s, err
}

// MustCreateTopic creates a topic on the server's broker.
func (c *Client) MustCreateTopic(t testing.TB, name string, partitions int) {
	t.Helper()
	if err := c.Do(Context(t), "POST", "/api/v1/topics", map[string]any{"name": name, "partitions": partitions}, http.StatusCreated, nil); err != nil {
		t.Fatalf("creating topic %s: %v", name, err)
	}
}

// MustCreateStream creates a stream from spec (YAML or JSON).
func (c *Client) MustCreateStream(t testing.TB, spec string) Stream {
	t.Helper()
	var s Stream
	if err := c.Do(Context(t), "POST", "/api/v1/streams", spec, http.StatusCreated, &s); err != nil {
		t.Fatalf("creating stream: %v", err)
	}
	return s
}

// MustRows fetches up to limit rows of a table.
func (c *Client) MustRows(t testing.TB, name string, limit int) Rows {
	t.Helper()
	r, err := c.Rows(Context(t), name, limit)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// MustStream fetches a stream.
func (c *Client) MustStream(t testing.TB, name string) Stream {
	t.Helper()
	s, err := c.Stream(Context(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Timeout bounds each blocking step of a test that uses [Context].
const Timeout = 60 * time.Second

// Context returns a context that ends with the test or after [Timeout].
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Eventually polls cond every 20 ms until it reports done, and fails the
// test if it has not within timeout, with the last state cond described.
// It polls for an outcome; it does not stand in for synchronisation.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (done bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, state := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %v; last state: %s", what, timeout, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requireCI skips the test, or fails it when CI=true: CI installs every
// tool the integration tests use (.ci/run).
func requireCI(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Kcat returns the path of kcat (Debian package "kcat"); without it the
// test is skipped, or fails under CI=true.
func Kcat(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		requireCI(t, "kcat not on PATH (apt-get install kcat)")
	}
	return p
}

// RunKcat runs kcat with args and stdin and returns its stdout.
func RunKcat(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(Context(t), Kcat(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// RepoRoot returns the module's root directory (the one holding go.mod),
// found from the working directory upwards.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// DuckDBResult is what testdata/duckdb/read.mjs prints.
type DuckDBResult struct {
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	// Rows are DuckDB's JSON renderings: BIGINTs and timestamps are
	// strings, structs objects.
	Rows []map[string]any `json:"rows"`
}

// RequireDuckDB returns the paths of node and of testdata/duckdb, where the
// npm package @duckdb/node-api is installed (`npm install` there). Without them
// the test is skipped, or fails under CI=true.
func RequireDuckDB(t testing.TB) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		requireCI(t, "node not on PATH; DuckDB tests need Node.js and `cd testdata/duckdb && npm install`")
	}
	dir = filepath.Join(RepoRoot(t), "testdata", "duckdb")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		requireCI(t, "DuckDB not installed: run `cd testdata/duckdb && npm install`")
	}
	return node, dir
}

// DuckDB runs query with DuckDB (testdata/duckdb/read.mjs) over a view t of
// the given Parquet files, in the UTC time zone. Without DuckDB the test is
// skipped, or fails under CI=true (see [RequireDuckDB]).
func DuckDB(t testing.TB, files []string, query string) DuckDBResult {
	t.Helper()
	node, dir := RequireDuckDB(t)
	req, _ := json.Marshal(map[string]any{"files": files, "sql": query})
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(Context(t), node, "read.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(req)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("duckdb (node read.mjs) %s: %v\nstderr:\n%s", query, err, stderr.String())
	}
	var res DuckDBResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("duckdb output: %v\n%s", err, stdout.String())
	}
	return res
}
