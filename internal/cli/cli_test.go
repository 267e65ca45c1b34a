package cli_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/cli"
	"github.com/sluice-dev/sluice/internal/node"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

var update = flag.Bool("update", false, "rewrite testdata/transcript.txt with the actual output")

// startNode starts a real node on free ports; see sluicetest.StartNode.
func startNode(t testing.TB) *node.Node { return sluicetest.StartNode(t) }

// run runs the CLI with args, stdin and env vars, and returns its exit
// code and what it wrote to standard output and standard error.
func run(t testing.TB, vars map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errw bytes.Buffer
	code = cli.Run(sluicetest.Context(t), args, cli.Env{
		Out: &out, Err: &errw, In: strings.NewReader(stdin),
		Getenv: func(k string) string { return vars[k] },
	})
	return code, out.String(), errw.String()
}

// step is one command of a transcript: a command line, its input lines
// (standard input, or records for produce) and, after "----", the output
// expected, up to a blank line.
type step struct {
	comments []string
	cmd      string
	input    []string
	want     string
	line     int
}

func parseTranscript(t *testing.T, path string) (header []string, steps []step) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var comments []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "#"):
			comments = append(comments, l)
			continue
		case l == "":
			if steps == nil && header == nil {
				header, comments = comments, nil
			}
			continue
		}
		s := step{comments: comments, cmd: l, line: i + 1}
		comments = nil
		for i++; i < len(lines) && lines[i] != "----"; i++ {
			s.input = append(s.input, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: %q has no ---- line", path, s.line, s.cmd)
		}
		var want []string
		for i++; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		s.want = strings.Join(want, "\n")
		steps = append(steps, s)
	}
	return header, steps
}

func writeTranscript(t *testing.T, path string, header []string, steps []step) {
	t.Helper()
	var b strings.Builder
	for _, l := range header {
		b.WriteString(l + "\n")
	}
	for _, s := range steps {
		b.WriteString("\n")
		for _, l := range s.comments {
			b.WriteString(l + "\n")
		}
		b.WriteString(s.cmd + "\n")
		for _, l := range s.input {
			b.WriteString(l + "\n")
		}
		b.WriteString("----\n")
		if s.want != "" {
			b.WriteString(s.want + "\n")
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// splitArgs splits a command line at spaces, honouring '...' quotes.
func splitArgs(line string) []string {
	var args []string
	var cur strings.Builder
	inArg, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inArg = !quoted, true
		case r == ' ' && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// baseTime is the timestamp of the first record produce writes; the n-th
// gets baseTime + n seconds, so that table output is deterministic. It is
// far from now, so that masking the times of the run leaves it alone.
var baseTime = time.Date(2021, 6, 1, 10, 0, 0, 0, time.UTC)

var rfc3339 = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)

// TestTranscript runs testdata/transcript.txt against a real node: each
// step's output (standard output, then standard error, then "[exit N]"
// when N is not 0) with volatile values masked must be what the file says.
// -update rewrites the file with the actual output; read the diff.
func TestTranscript(t *testing.T) {
	n := startNode(t)
	url, broker := n.URL(), n.BrokerAddr()
	closed := closedAddr(t)
	api := sluicetest.NewClient(url, "alice")

	// Spec files from testdata with the broker's address filled in.
	specs := t.TempDir()
	for _, f := range []string{"clicks.yaml", "two_modes.yaml", "typo.yaml", "clicks.sql", "clicks_typo.sql"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("$BROKER"), []byte(broker))
		if err := os.WriteFile(filepath.Join(specs, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	expand := strings.NewReplacer("$SPECS", specs, "$CLOSED", closed, "$SERVER", url).Replace
	mask := func(s string) string {
		s = strings.NewReplacer(specs, "$SPECS", closed, "$CLOSED", url, "$SERVER", broker, "$BROKER").Replace(s)
		return rfc3339.ReplaceAllStringFunc(s, func(ts string) string {
			// Times of this run (created, last commit, quarantined) vary;
			// those in records (produce's timestamps, payloads) do not.
			if tm, err := time.Parse(time.RFC3339Nano, ts); err == nil && time.Since(tm).Abs() < time.Hour {
				return "$TIME"
			}
			return ts
		})
	}
	vars := map[string]string{"SLUICE_SERVER": url, "SLUICE_USER": "alice"}

	const path = "testdata/transcript.txt"
	header, steps := parseTranscript(t, path)
	var all strings.Builder
	for i := range steps {
		s := &steps[i]
		args := splitArgs(s.cmd)
		var got string
		switch args[0] {
		case "sluice":
			for j := range args {
				args[j] = expand(args[j])
			}
			stdin := ""
			if len(s.input) > 0 {
				stdin = strings.Join(s.input, "\n") + "\n"
			}
			code, stdout, stderr := run(t, vars, stdin, args[1:]...)
			got = stdout + stderr
			if code != 0 {
				got += fmt.Sprintf("[exit %d]\n", code)
			}
			all.WriteString(got)
		case "produce":
			produce(t, broker, args[1], s.input)
		case "wait-stream":
			rows, _ := strconv.ParseInt(args[2], 10, 64)
			quarantined, _ := strconv.ParseInt(args[3], 10, 64)
			waitStream(t, api, args[1], rows, quarantined)
		default:
			t.Fatalf("%s:%d: unknown command %q", path, s.line, args[0])
		}
		got = strings.TrimRight(mask(got), "\n")
		if strings.Contains(got, "\n\n") {
			t.Errorf("%s:%d: %s: output has a blank line, which a transcript cannot hold; check it in Go instead:\n%s", path, s.line, s.cmd, got)
			continue
		}
		if *update {
			s.want = got
			continue
		}
		if got != s.want {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, s.line, s.cmd, got, s.want)
		}
	}
	if *update {
		writeTranscript(t, path, header, steps)
	}
	// Secrets are never printed back, by any command.
	if strings.Contains(all.String(), "hunter2") {
		t.Errorf("a secret's value was printed:\n%s", all.String())
	}
}

// produce writes key:value records to partition 0 of topic, the n-th with
// the timestamp baseTime + n seconds.
func produce(t testing.TB, broker, topic string, kvs []string) {
	t.Helper()
	sluicetest.Produce(t, broker, topic, baseTime, kvs...)
}

// waitStream waits until stream name has committed exactly rows and
// quarantined rows and has no lag, so that what it shows is settled.
func waitStream(t testing.TB, api *sluicetest.Client, name string, rows, quarantined int64) {
	t.Helper()
	sluicetest.Eventually(t, 30*time.Second, "stream "+name+" settling", func() (bool, string) {
		var s struct {
			Status struct {
				State           string
				RowsIngested    int64     `json:"rows_ingested"`
				RowsQuarantined int64     `json:"rows_quarantined"`
				Lag             int64     `json:"lag"`
				LastCommitAt    time.Time `json:"last_commit_at"`
			}
		}
		if err := api.Do(t.Context(), "GET", "/api/v1/streams/"+name, nil, 200, &s); err != nil {
			return false, err.Error()
		}
		st := s.Status
		return st.State == "running" && st.RowsIngested == rows && st.RowsQuarantined == quarantined && st.Lag == 0 && !st.LastCommitAt.IsZero(),
			fmt.Sprintf("%+v", st)
	})
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

// TestTableShowJSONKeyOrder checks, beyond the transcript's text, that
// every line of `table show --format json` is an object whose keys are the
// table's columns in order.
func TestTableShowJSONKeyOrder(t *testing.T) {
	n := startNode(t)
	api := sluicetest.NewClient(n.URL(), "alice")
	api.MustCreateTopic(t, "t", 1)
	spec, err := os.ReadFile("testdata/clicks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	api.MustCreateStream(t, strings.ReplaceAll(strings.ReplaceAll(string(spec), "$BROKER", n.BrokerAddr()), "subscribe: clicks", "subscribe: t"))
	produce(t, n.BrokerAddr(), "t", []string{`a:{"at":"2021-06-01T10:00:00Z","user_id":"a"}`, `b:{"user_id":"b","at":"2021-06-01T10:00:00Z","ms":1}`})
	waitStream(t, api, "main.web.clicks", 2, 0)

	vars := map[string]string{"SLUICE_SERVER": n.URL(), "SLUICE_USER": "alice"}
	code, out, errs := run(t, vars, "", "table", "show", "main.web.clicks_ingestion", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines:\n%s", out)
	}
	for _, l := range lines {
		if got, want := strings.Join(orderedKeys(t, []byte(l)), " "), "key value stream_record_timestamp kafka_topic kafka_partition kafka_offset record_source"; got != want {
			t.Errorf("keys %s, want %s: %s", got, want, l)
		}
		var row map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(orderedKeys(t, row["value"]), " "), "user_id url ms at"; got != want {
			t.Errorf("value's keys %s, want %s (schema order, not the record's): %s", got, want, l)
		}
	}
}

// orderedKeys returns the keys of the JSON object raw, in order.
func orderedKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object (%v): %s", err, raw)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
	}
	return keys
}

func TestHelp(t *testing.T) {
	cases := map[string]struct {
		args []string
		want []string
	}{
		"root": {[]string{"--help"}, []string{"sluice up --demo", "sluice stream list main.demo", "Available Commands:", "stream", "table", "--server"}},
		"stream create": {[]string{"stream", "create", "--help"}, []string{"Examples:", "sluice stream create -f orders.yaml",
			"cat orders.json | sluice stream create -f -", "-f, --file", "docs/streams.md"}},
		"table show": {[]string{"table", "show", "--help"}, []string{"Examples:", "--format csv", "--limit"}},
		"feature-table sync": {[]string{"feature-table", "sync", "--help"}, []string{"Examples:", "sluice feature-table sync main.features.user_profile",
			"already sync after every pipeline commit", "triggered\n(on-demand) sync", "written outside a\n    pipeline", "--full"}},
		"feature-table publish": {[]string{"feature-table", "publish", "--help"}, []string{"Examples:", "sluice feature-table publish main.features.user_activity",
			"online = true", "after every commit", "/get-online-features"}},
		"feature-table get": {[]string{"feature-table", "get", "--help"}, []string{"Examples:", "sluice feature-table get main.features.user_profile",
			"--sql", "TTL", "windowed"}},
		"up": {[]string{"up", "--help"}, []string{"--online", "redis://10.0.0.5:6379/0", "rediss://"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, errs := run(t, nil, "", c.args...)
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestServerUnreachable checks that every client command, pointed at a
// closed port, says it cannot reach the server and how to start one.
func TestServerUnreachable(t *testing.T) {
	closed := "http://" + closedAddr(t)
	for _, args := range [][]string{
		{"stream", "list", "main.web"},
		{"stream", "get", "main.web.x"},
		{"table", "show", "main.web.x"},
		{"topic", "list"},
		{"secret", "list"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errs := run(t, map[string]string{"SLUICE_SERVER": closed}, "", args...)
			if code != 1 || out != "" {
				t.Errorf("exit %d, stdout %q", code, out)
			}
			for _, w := range []string{"cannot reach the sluice server at " + closed, "`sluice up`"} {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q: %s", w, errs)
				}
			}
		})
	}
}
